"""The import templates: CSV (header only) and XLSX (typed columns, drop-downs, instructions)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import xlsxwriter

from kontak.contact.normalize import CHANNELS, PLATFORMS
from kontak.custom_field.values import FieldSpec
from kontak.files.headers import TEMPLATE_COLUMNS
from kontak.files.writers import write_csv

LAST_ROW = 1_048_575
NOTE_EN = (
    "Row 1 is the header: keep it. Each row below is one contact. Rows that share an email, "
    "a phone or a social account make the whole file fail; fix them and upload again."
)
NOTE_ID = (
    "Baris 1 adalah judul kolom: jangan diubah. Setiap baris di bawahnya adalah satu kontak. "
    "Baris dengan email, nomor telepon, atau akun media sosial yang sama membuat seluruh file "
    "gagal diunggah; perbaiki lalu unggah lagi."
)
_HELP: dict[str, tuple[str, str, str, str]] = {
    # column: (required, English, Bahasa Indonesia, example)
    "name": (
        "yes",
        "The contact's full name, up to 200 characters.",
        "Nama lengkap kontak, maksimal 200 karakter.",
        "Budi Santoso",
    ),
    "email": (
        "one of email, phone or a social account",
        "One email address.",
        "Satu alamat email.",
        "budi@example.com",
    ),
    "phone": (
        "one of email, phone or a social account",
        "One phone number; 0812…, +62 812… and 62812… are all fine. The column is Text "
        "so Excel keeps every digit.",
        "Satu nomor telepon; 0812…, +62 812… dan 62812… semuanya boleh. Kolom ini bertipe "
        "Teks agar Excel menyimpan semua digit.",
        "0812-3456-7890",
    ),
    "channel": (
        "no",
        "How to reach the contact: " + ", ".join(CHANNELS) + ".",
        "Kanal komunikasi: " + ", ".join(CHANNELS) + ".",
        "whatsapp",
    ),
    "address": (
        "no",
        "Customer address, up to 500 characters.",
        "Alamat pelanggan, maksimal 500 karakter.",
        "Jl. Merdeka No. 1, Jakarta",
    ),
    "tags": (
        "no",
        "Labels, separated by commas.",
        "Label, dipisahkan dengan koma.",
        "vip, pelanggan",
    ),
}
for _p in PLATFORMS:
    _HELP[_p] = (
        "one of email, phone or a social account",
        f"The {_p} handle (with or without @) or the profile link.",
        f"Nama pengguna {_p} (dengan atau tanpa @) atau tautan profil.",
        "@budi.santoso",
    )
_TYPE_HELP = {
    "text": ("Text.", "Teks.", "…"),
    "number": ("A number, like 42 or 3.5.", "Angka, misalnya 42 atau 3,5.", "42"),
    "date": (
        "A date: YYYY-MM-DD or DD/MM/YYYY.",
        "Tanggal: YYYY-MM-DD atau DD/MM/YYYY.",
        "2024-08-17",
    ),
    "boolean": ("true or false (ya/tidak).", "true atau false (ya/tidak).", "true"),
    "select": ("One of the options in the list.", "Salah satu pilihan pada daftar.", ""),
}


def columns(fields: Sequence[FieldSpec]) -> list[str]:
    """The template's header: the built-in columns, then one per custom field."""
    return [*TEMPLATE_COLUMNS, *(f.key for f in fields)]


def write_template(path: Path, fmt: str, fields: Sequence[FieldSpec]) -> None:
    if fmt == "xlsx":
        _write_xlsx(path, fields)
    else:
        write_csv(path, columns(fields), [])


def _write_xlsx(path: Path, fields: Sequence[FieldSpec]) -> None:
    header = columns(fields)
    workbook = xlsxwriter.Workbook(str(path))
    try:
        text = workbook.add_format({"num_format": "@"})
        bold = workbook.add_format(
            {"bold": True, "num_format": "@", "bg_color": "#E8F0FE", "border": 1}
        )
        wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
        sheet = workbook.add_worksheet("Contacts")
        for col, name in enumerate(header):
            # Every column is Text: phones keep their leading 0 and all their digits.
            sheet.set_column(col, col, 28 if name in ("address", "email") else 18, text)
            sheet.write_string(0, col, name, bold)
        sheet.freeze_panes(1, 0)
        _list(sheet, header.index("channel"), list(CHANNELS), "channel")
        for field in fields:
            col = header.index(field.key)
            if field.type == "select" and field.options:
                _list(sheet, col, list(field.options), field.label)
            elif field.type == "boolean":
                _list(sheet, col, ["true", "false"], field.label)

        guide = workbook.add_worksheet("Instructions")
        guide.set_column(0, 0, 16)
        guide.set_column(1, 1, 22)
        guide.set_column(2, 3, 60, wrap)
        guide.set_column(4, 4, 24)
        guide.write_row(
            0,
            0,
            [
                "Column / Kolom",
                "Required / Wajib",
                "How to fill it",
                "Cara mengisi",
                "Example / Contoh",
            ],
            bold,
        )
        for row, name in enumerate(header, 1):
            guide.write_row(row, 0, _help_row(name, fields))
        notes = len(header) + 2
        guide.write_string(notes, 0, NOTE_EN, wrap)
        guide.write_string(notes + 1, 0, NOTE_ID, wrap)
    finally:
        workbook.close()


def _list(sheet: object, col: int, values: list[str], label: str) -> None:
    sheet.data_validation(  # type: ignore[attr-defined]
        1,
        col,
        LAST_ROW,
        col,
        {
            "validate": "list",
            "source": values,
            "error_type": "warning",
            "error_title": label,
            "error_message": "Choose a value from the list / Pilih nilai dari daftar.",
        },
    )


def _help_row(name: str, fields: Sequence[FieldSpec]) -> list[str]:
    if name in _HELP:
        required, en, id_, example = _HELP[name]
        return [name, required, en, id_, example]
    field = next(f for f in fields if f.key == name)
    en, id_, example = _TYPE_HELP.get(field.type, ("", "", ""))
    if field.type == "select":
        example = field.options[0] if field.options else ""
        en += " Options: " + ", ".join(field.options)
        id_ += " Pilihan: " + ", ".join(field.options)
    return [
        name,
        "yes" if field.required else "no",
        f"{field.label}. {en}",
        f"{field.label}. {id_}",
        example,
    ]
