"""Normalizers: each writing style people use gives one canonical value, or a clear error."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kontak.contact.normalize import (
    InvalidValue,
    normalize_address,
    normalize_channel,
    normalize_email,
    normalize_handle,
    normalize_name,
    normalize_phone,
    split_tags,
)


@pytest.mark.parametrize(
    "written",
    [
        "0812-3456-7890",
        "081234567890",
        "0812 3456 7890",
        "+62 812 3456 7890",
        "+62-812-3456-7890",
        "+6281234567890",
        "6281234567890",
        "62 812 3456 7890",
        "81234567890",
        "81234567890.0",
        81234567890.0,
        81234567890,
        6281234567890,
        "+62 (0)812 3456 7890",
        "(0812) 3456 7890",
        " 0812.3456.7890 ",
    ],
)
def test_indonesian_mobile_writings_give_one_e164(written: object) -> None:
    assert normalize_phone(written, "ID") == "+6281234567890"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("(021) 8350123", "+62218350123"),
        ("021-8350123", "+62218350123"),
        ("+1 202 555 0143", "+12025550143"),
        ("+65 6123 4567", "+6561234567"),
    ],
)
def test_landlines_and_foreign_numbers(written: str, expected: str) -> None:
    assert normalize_phone(written, "ID") == expected


def test_region_decides_national_numbers() -> None:
    assert normalize_phone("6123 4567", "SG") == "+6561234567"


@pytest.mark.parametrize(
    ("written", "says"),
    [
        ("6.28123E+12", "Format the phone column as Text"),
        ("6,28123E+12", "scientific notation"),
        (6.5, "scientific notation"),
        ("0812-3456", "not a valid phone number"),
        ("12345", "not a valid phone number"),
        ("-1199", "not a valid phone number"),
        ("call me", "not a phone number"),
        ("0812 3456 7890 / 0813 1111 2222", "more than one phone number"),
        ("0812-3456-7890; 0813-1111-2222", "more than one phone number"),
    ],
)
def test_bad_phones_explain_what_to_do(written: object, says: str) -> None:
    with pytest.raises(InvalidValue, match=says):
        normalize_phone(written, "ID")


@pytest.mark.parametrize("empty", [None, "", "   ", "\t"])
def test_empty_phone_is_none(empty: object) -> None:
    assert normalize_phone(empty, "ID") is None


def _valid_mobile_nsn(digits: str) -> bool:
    number = phonenumbers.parse("+62" + digits)
    return bool(phonenumbers.is_valid_number(number))


mobile_nsn = (
    st.tuples(st.sampled_from("1235789"), st.text("0123456789", min_size=7, max_size=10))
    .map(lambda t: "8" + t[0] + t[1])
    .filter(_valid_mobile_nsn)
)


def _styles(nsn: str, cut: int) -> list[object]:
    local = "0" + nsn
    grouped = f"{local[:4]}-{local[4:8]}-{local[8:]}".rstrip("-")
    return [
        local,
        grouped,
        grouped.replace("-", " "),
        grouped.replace("-", "."),
        "+62" + nsn,
        "+62 " + nsn[:3] + " " + nsn[3:],
        "+62 (0)" + nsn,
        "62" + nsn,
        nsn,
        nsn + ".0",
        int(nsn),
        float(nsn),
        f"({local[:cut]}) {local[cut:]}",
    ]


@settings(max_examples=300, deadline=None)
@given(nsn=mobile_nsn, cut=st.integers(2, 5))
def test_property_every_writing_of_a_number_is_one_e164(nsn: str, cut: int) -> None:
    results = {normalize_phone(style, "ID") for style in _styles(nsn, cut)}
    assert results == {"+62" + nsn}


@settings(max_examples=300, deadline=None)
@given(nsn=mobile_nsn, cut=st.integers(2, 5))
def test_property_phone_normalization_is_idempotent(nsn: str, cut: int) -> None:
    for style in _styles(nsn, cut):
        once = normalize_phone(style, "ID")
        assert normalize_phone(once, "ID") == once


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_property_phone_never_fails_but_with_invalid_value(text: str) -> None:
    try:
        result = normalize_phone(text, "ID")
    except InvalidValue:
        return
    assert result is None or (result.startswith("+") and result[1:].isdigit())


def test_email_is_normalized_and_keyed_case_insensitively() -> None:
    assert normalize_email("  Budi@Example.COM ") == ("Budi@example.com", "budi@example.com")
    assert normalize_email("") is None


@pytest.mark.parametrize(
    "bad",
    ["budi", "budi@", "@example.com", "Budi <budi@example.com>", "a@b@c.com", "budi@localhost"],
)
def test_bad_emails_are_refused(bad: str) -> None:
    with pytest.raises(InvalidValue, match="not a valid email"):
        normalize_email(bad)


@settings(max_examples=200, deadline=None)
@given(st.emails())
def test_property_email_normalization_is_idempotent(email: str) -> None:
    try:
        first = normalize_email(email)
    except InvalidValue:
        return
    assert first is not None
    assert normalize_email(first[0]) == first


@pytest.mark.parametrize(
    ("platform", "written", "handle"),
    [
        ("instagram", "@budi_s", "budi_s"),
        ("instagram", "https://www.instagram.com/budi_s/", "budi_s"),
        ("instagram", "instagram.com/budi_s?igsh=abc", "budi_s"),
        ("twitter", "https://x.com/budi", "budi"),
        ("twitter", "https://mobile.twitter.com/budi", "budi"),
        ("facebook", "https://www.facebook.com/profile.php?id=100012345", "100012345"),
        ("facebook", "fb.com/budi.santoso", "budi.santoso"),
        ("tiktok", "https://www.tiktok.com/@budi.s", "budi.s"),
        ("linkedin", "https://id.linkedin.com/in/budi-santoso", "budi-santoso"),
        ("telegram", "t.me/budisantoso", "budisantoso"),
        ("youtube", "https://www.youtube.com/@BudiVlog", "BudiVlog"),
        ("youtube", "https://youtube.com/channel/UC123abc", "UC123abc"),
    ],
)
def test_handles_and_profile_links(platform: str, written: str, handle: str) -> None:
    assert normalize_handle(platform, written) == handle


@pytest.mark.parametrize(
    ("platform", "written", "says"),
    [
        ("instagram", "https://x.com/budi", "twitter link"),
        ("instagram", "https://example.com/budi", "not a link to a known profile"),
        ("instagram", "budi santoso", "not a instagram handle"),
    ],
)
def test_bad_handles(platform: str, written: str, says: str) -> None:
    with pytest.raises(InvalidValue, match=says):
        normalize_handle(platform, written)


def test_names_are_trimmed_and_collapsed_and_keep_unicode() -> None:
    assert normalize_name("  Budi \t  Santoso\n ") == "Budi Santoso"
    assert normalize_name("T 🏠 🔥 Test") == "T 🏠 🔥 Test"
    assert normalize_name("Bu\x00di\u200b") == "Budi"


def test_name_limits() -> None:
    with pytest.raises(InvalidValue, match="required"):
        normalize_name("   ")
    assert len(normalize_name("a" * 200)) == 200
    with pytest.raises(InvalidValue, match="shorten it to 200"):
        normalize_name("a" * 201)


def test_address_keeps_lines_and_limits_length() -> None:
    assert normalize_address(" Jl. Merdeka 1\r\nJakarta ") == "Jl. Merdeka 1\nJakarta"
    with pytest.raises(InvalidValue, match="500"):
        normalize_address("x" * 501)


def test_channels_and_aliases() -> None:
    assert normalize_channel("WhatsApp") == "whatsapp"
    assert normalize_channel("Live Chat") == "livechat"
    assert normalize_channel("WA") == "whatsapp"
    assert normalize_channel("") is None
    with pytest.raises(InvalidValue, match="one of: whatsapp"):
        normalize_channel("pigeon")


def test_tags_are_split_trimmed_lowercased_and_unique() -> None:
    assert split_tags(" Customer , VIP , vip ") == ["customer", "vip"]
    assert split_tags("") == []
