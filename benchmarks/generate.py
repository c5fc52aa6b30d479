"""Deterministic, realistic Indonesian contact data for benchmarks.

Every phone writing style people use, emails, social handles and tags; a chosen share of
in-file duplicates and of invalid rows. The same seed gives the same bytes.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from kontak.files.headers import TEMPLATE_COLUMNS

FIRST = [
    "Budi",
    "Siti",
    "Agus",
    "Dewi",
    "Andi",
    "Rina",
    "Joko",
    "Sri",
    "Eko",
    "Putri",
    "Hendra",
    "Wulan",
    "Rizky",
    "Ayu",
    "Fajar",
    "Indah",
]
LAST = [
    "Santoso",
    "Wijaya",
    "Saputra",
    "Lestari",
    "Hidayat",
    "Kusuma",
    "Pratama",
    "Sari",
    "Nugroho",
    "Halim",
    "Siregar",
    "Nasution",
]
CITIES = [
    "Jakarta",
    "Bandung",
    "Surabaya",
    "Medan",
    "Semarang",
    "Makassar",
    "Denpasar",
    "Yogyakarta",
]
PREFIXES = [
    "811",
    "812",
    "813",
    "821",
    "822",
    "823",
    "851",
    "852",
    "853",
    "855",
    "856",
    "857",
    "858",
    "859",
    "877",
    "878",
    "881",
    "882",
    "895",
    "896",
    "897",
    "898",
    "899",
]
TAGS = ["pelanggan", "vip", "prospek", "reseller", "b2b", "promo 11.11"]
CHANNELS = ["whatsapp", "email", "livechat", "instagram", "telegram", "phone", "sms", ""]
HEADER = list(TEMPLATE_COLUMNS)


def phone_styles(nsn: str) -> list[str]:
    local = "0" + nsn
    return [
        local,
        f"{local[:4]}-{local[4:8]}-{local[8:]}",
        f"{local[:4]} {local[4:8]} {local[8:]}",
        "+62" + nsn,
        f"+62 {nsn[:3]} {nsn[3:7]} {nsn[7:]}",
        "62" + nsn,
        f"+62 (0){nsn}",
    ]


def rows(
    count: int, *, seed: int = 7, duplicates: float = 0.0, invalid: float = 0.0
) -> list[list[str]]:
    rng = random.Random(seed)
    out: list[list[str]] = []
    for i in range(count):
        nsn = PREFIXES[i % len(PREFIXES)] + f"{i:08d}"
        first, last = rng.choice(FIRST), rng.choice(LAST)
        row = [
            f"{first} {last}",
            f"{first.lower()}.{last.lower()}{i}@contoh{i % 97}.co.id",
            rng.choice(phone_styles(nsn)),
            rng.choice(CHANNELS),
            f"Jl. Merdeka No. {i % 300 + 1}, {rng.choice(CITIES)}",
            ", ".join(rng.sample(TAGS, rng.randint(0, 2))),
            "",
            f"@{first.lower()}_{i}" if i % 4 == 0 else "",
            "",
            f"{first.lower()}{i}" if i % 9 == 0 else "",
            "",
            "",
            "",
        ]
        out.append(row)
    for _ in range(int(count * duplicates)):
        a, b = rng.randrange(count), rng.randrange(count)
        out[b][2] = out[a][2]
    for _ in range(int(count * invalid)):
        out[rng.randrange(count)][1] = "not-an-email@"
    return out


def write_csv(path: Path, count: int, *, duplicates: float = 0.0, invalid: float = 0.0) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(rows(count, duplicates=duplicates, invalid=invalid))
    return path


def write_xlsx(path: Path, count: int, *, duplicates: float = 0.0, invalid: float = 0.0) -> Path:
    """The same rows as :func:`write_csv`, as a workbook of text cells."""
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet("Contacts")
    for col, name in enumerate(HEADER):
        sheet.write_string(0, col, name)
    for r, row in enumerate(rows(count, duplicates=duplicates, invalid=invalid), start=1):
        for col, value in enumerate(row):
            if value:
                sheet.write_string(r, col, value)
    workbook.close()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--duplicates", type=float, default=0.0)
    parser.add_argument("--invalid", type=float, default=0.0)
    args = parser.parse_args()
    writer = write_xlsx if args.output.suffix == ".xlsx" else write_csv
    writer(args.output, args.rows, duplicates=args.duplicates, invalid=args.invalid)


if __name__ == "__main__":
    main()
