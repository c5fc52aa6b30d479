"""What a support agent does in the browser: sign in, add a contact by hand, and the
reference's import flow (template, drop, rejection, See Duplicated Data, fix, success)."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, FilePayload, Page, expect
from sqlalchemy.orm import Session, sessionmaker

from kontak.tag.service import TAGS_SHOWN
from kontak.web.pages.common import PROBLEMS_SHOWN
from tests.e2e.conftest import screenshot, sign_in
from tests.factories import Member, make_member
from tests.files import TEMPLATE, csv_bytes


def drop_file(page: Page, name: str, content: bytes) -> None:
    """Drag and drop a file onto the drop zone, as a person would from their desktop."""
    transfer = page.evaluate_handle(
        """([name, bytes]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], name, {type: "text/csv"}));
            return transfer;
        }""",
        [name, list(content)],
    )
    page.dispatch_event("#dropzone", "dragenter", {"dataTransfer": transfer})
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})


def payload(name: str, content: bytes) -> FilePayload:
    return {"name": name, "mimeType": "text/csv", "buffer": content}


def rows(count: int, start: int = 0) -> list[list[str]]:
    return [
        [
            f"Pelanggan {i}",
            f"p{i}@contoh.co.id",
            f"0812{i:08d}",
            "whatsapp",
            "Jakarta",
            "vip",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ]
        for i in range(start, start + count)
    ]


def test_sign_in_and_create_a_contact_fixing_a_field_in_place(page: Page, admin: Member) -> None:
    page.goto("/contacts")
    expect(page).to_have_url(re.compile(r"/sign-in"))
    page.fill("#email", admin.email)
    page.fill("#password", "wrong-password")
    page.click("form button[type=submit]")
    expect(page.locator(".alert.error")).to_contain_text("Wrong email or password")
    sign_in(page, admin.email, admin.password)
    expect(page.locator("h1")).to_have_text("Contacts")
    page.click("#create-new")
    expect(page.locator("h1")).to_have_text("Create New Contact")
    expect(page.locator("#manual-title")).to_have_text("Add Contact Manually")
    expect(page.locator("#import-title")).to_have_text("Import Contact from .CSV or .XLSX")

    page.fill("#name", "Budi Santoso")
    page.fill("#phone", "0812-3456")
    page.fill("#email", "budi@contoh.co.id")
    page.select_option("#channel", "whatsapp")
    page.fill("#address", "Jl. Merdeka No. 1, Jakarta")
    page.fill("#social-handle-0", "https://instagram.com/budi.s")
    page.click("#add-social")
    page.locator("#social-rows .social-row").nth(1).locator("select").select_option("tiktok")
    page.locator("#social-rows .social-row").nth(1).locator("input").fill("@budi_tt")
    page.fill("#tags-input", "VIP, pelanggan")
    page.click("#manual-form button[type=submit]")

    expect(page.locator("#err-phone")).to_contain_text("not a valid phone number")
    expect(page.locator("#phone")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#name")).to_have_value("Budi Santoso")
    screenshot(page, "manual-form.png")
    page.fill("#phone", "0812-3456-7890")
    page.click("#manual-form button[type=submit]")

    expect(page.locator("h1")).to_have_text("Budi Santoso")
    expect(page.locator("#toasts .toast")).to_contain_text("The contact was created")
    details = page.locator("dl.details")
    expect(details).to_contain_text("+6281234567890")
    expect(details).to_contain_text("instagram: @budi.s")
    expect(details).to_contain_text("tiktok: @budi_tt")
    expect(details).to_contain_text("vip")

    page.goto("/contacts")
    expect(page.locator("table.contacts tbody tr")).to_have_count(1)
    page.fill("#q", "0812-3456")
    page.click("form.filters button[type=submit]")
    expect(page.locator("table.contacts tbody tr")).to_have_count(1)
    screenshot(page, "contacts-list.png")


def test_duplicate_phone_by_hand_links_the_existing_contact(page: Page, admin: Member) -> None:
    sign_in(page, admin.email, admin.password)
    for name in ("Ani", "Ani Lagi"):
        page.goto("/contacts/new")
        page.fill("#name", name)
        page.fill("#phone", "0813-1111-2222")
        page.click("#manual-form button[type=submit]")
    expect(page.locator("#conflict")).to_contain_text("+6281311112222")
    page.click("#conflict a")
    expect(page.locator("h1")).to_have_text("Ani")


def test_reference_import_flow(page: Page, admin: Member, tmp_path: Path) -> None:
    sign_in(page, admin.email, admin.password)
    page.goto("/contacts/new")
    with page.expect_download() as download:
        page.click("#template-csv")
    template = tmp_path / "template.csv"
    download.value.save_as(template)
    assert template.read_text(encoding="utf-8-sig").strip() == ",".join(TEMPLATE)
    with page.expect_download() as xlsx:
        page.click("#template-xlsx")
    assert xlsx.value.suggested_filename.endswith(".xlsx")

    good = rows(12)
    bad = [list(r) for r in good]
    bad[7][2] = "+62 812 0000 0002"  # row 9 repeats row 4's phone
    drop_file(page, "kontak.csv", csv_bytes([TEMPLATE, *bad]))
    expect(page.locator("#chosen-name")).to_have_text("kontak.csv")
    page.click("#continue")
    rejected = page.locator("#import-rejected")
    expect(rejected).to_contain_text("nothing was saved")
    page.click("#see-duplicates")
    panel = page.locator("#duplicates")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("+6281200000002")
    expect(panel.locator("tbody tr")).to_have_count(2)
    expect(panel.locator("tbody tr").nth(0)).to_contain_text("4")
    expect(panel.locator("tbody tr").nth(1)).to_contain_text("9")
    screenshot(page, "import-rejected.png")

    page.set_input_files(
        "#file-input",
        files=payload("kontak-fixed.csv", csv_bytes([TEMPLATE, *good])),
    )
    expect(page.locator("#continue")).to_be_enabled()
    page.click("#continue")
    toast = page.locator("#toasts .toast")
    expect(toast).to_contain_text("12 contacts were added")
    box = toast.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] > 1280 - 40  # top right
    assert box["y"] < 100
    screenshot(page, "import-success.png")

    page.goto("/imports")
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.locator("tbody tr").first).to_contain_text("kontak-fixed.csv")


def test_a_big_rejection_lists_the_first_problems(page: Page, admin: Member) -> None:
    # A 1M-row file with 1% duplicates and 1% invalid rows: the page built ~540,000
    # elements and froze ~12 s when See Duplicated Data opened. It lists the first few.
    n = PROBLEMS_SHOWN + 1
    shared = [["name", "email", "phone"]]
    shared += [[f"Sama {i}", f"sama{i}@contoh.id", f"0812{i:04d}0000"] for i in range(n)]
    shared += [[f"Ulang {i}", "", f"0812{i:04d}0000"] for i in range(n)]
    shared += [[f"Salah {i}", f"salah{i}@", f"0815{i:08d}"] for i in range(n)]
    sign_in(page, admin.email, admin.password)
    page.goto("/contacts/new")
    page.set_input_files("#file-input", files=payload("besar.csv", csv_bytes(shared)))
    page.click("#continue")
    expect(page.locator("#import-rejected")).to_contain_text("nothing was saved")
    page.click("#see-duplicates")
    panel = page.locator("#duplicates")
    expect(panel.locator("h4")).to_have_count(PROBLEMS_SHOWN)
    expect(panel.locator("p.more")).to_have_text(
        f"Only the first {PROBLEMS_SHOWN} are listed here; the report lists them all."
    )
    invalid = page.locator("#result > .table-wrap")
    expect(invalid.locator("tbody tr")).to_have_count(PROBLEMS_SHOWN)
    expect(page.locator("#result > p.more")).to_have_count(1)
    expect(page.locator("#result a[href$='report?format=csv']")).to_have_count(1)


def test_past_the_first_tags_the_pages_suggest_those_that_start_as_typed(
    page: Page, admin: Member
) -> None:
    # Past TAGS_SHOWN tags the pages offer the first by name; a tag after them (here
    # "zzz-akhir") is suggested once its first letters are typed, from GET /api/v1/tags.
    tags = [[f"Orang {i}", f"0857{i:08d}", f"pelanggan-{i:04d}"] for i in range(TAGS_SHOWN)]
    tags.append(["Orang Akhir", "085799999999", "zzz-akhir"])
    sign_in(page, admin.email, admin.password)
    page.goto("/contacts/new")
    page.set_input_files(
        "#file-input", files=payload("tags.csv", csv_bytes([["name", "phone", "tags"], *tags]))
    )
    page.click("#continue")
    expect(page.locator("#toasts .toast")).to_contain_text(f"{TAGS_SHOWN + 1} contacts")

    page.goto("/contacts")
    options = page.locator("#tag-choices option")
    expect(options).to_have_count(TAGS_SHOWN)
    page.fill("#tag", "ZZZ")
    expect(options).to_have_count(1)
    expect(options.first).to_have_attribute("value", "zzz-akhir")

    page.goto("/contacts/new")
    known = page.locator("#known-tags option")
    expect(known).to_have_count(TAGS_SHOWN)
    page.fill("#tags-input", "vip, zz")
    expect(known).to_have_count(1)
    expect(known.first).to_have_attribute("value", "vip, zzz-akhir")


def test_import_flow_in_bahasa_indonesia(page: Page, admin: Member) -> None:
    sign_in(page, admin.email, admin.password)
    page.select_option("#lang-select", "id")
    expect(page.locator("h1")).to_have_text("Kontak")
    page.click("#create-new")
    expect(page.locator("h1")).to_have_text("Buat Kontak Baru")
    expect(page.locator("#manual-title")).to_have_text("Tambah Kontak Secara Manual")
    bad = rows(3)
    bad[2][1] = bad[0][1]
    drop_file(page, "kontak.csv", csv_bytes([TEMPLATE, *bad]))
    page.click("#continue")
    expect(page.locator("#import-rejected")).to_contain_text("tidak ada data yang disimpan")
    expect(page.locator("#import-rejected")).to_contain_text(
        "Tidak ada yang diimpor: 1 nilai muncul berulang di file"
    )
    page.click("#see-duplicates")
    expect(page.locator("#see-duplicates")).to_have_text("Sembunyikan Data Duplikat")
    expect(page.locator("#duplicates")).to_contain_text("p0@contoh.co.id")
    page.set_input_files(
        "#file-input",
        files=payload("ok.csv", csv_bytes([TEMPLATE, *rows(3)])),
    )
    page.click("#continue")
    expect(page.locator("#toasts .toast")).to_contain_text("3 kontak berhasil ditambahkan")


def test_agent_sees_no_import(page: Page, admin: Member, sessions: sessionmaker[Session]) -> None:
    agent = make_member(sessions, "agent@acme.co.id", org="acme", role="agent")
    sign_in(page, agent.email, agent.password)
    expect(page.locator("nav[aria-label=main]")).not_to_contain_text("Import history")
    page.click("#create-new")
    expect(page.locator("#manual-title")).to_be_visible()
    expect(page.locator("#import")).to_have_count(0)
    response = page.goto("/imports")
    assert response is not None
    assert response.status == 403


def test_small_screen_and_keyboard(browser: Browser, base_url: str, admin: Member) -> None:
    context = browser.new_context(base_url=base_url, viewport={"width": 375, "height": 740})
    page = context.new_page()
    try:
        sign_in(page, admin.email, admin.password)
        page.goto("/contacts/new")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 380
        page.focus("#name")
        page.keyboard.type("Keyboard Person")
        page.keyboard.press("Tab")
        page.keyboard.type("kb@contoh.co.id")
        page.keyboard.press("Enter")
        expect(page.locator("h1")).to_have_text("Keyboard Person")
    finally:
        context.close()
