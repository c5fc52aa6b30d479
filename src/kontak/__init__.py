"""Kontak: the contacts service of an omnichannel customer-service platform."""

from kontak.sqlite_config import turn_off_memory_statistics

__version__ = "0.1.0"

# Before any module of the package imports sqlite3 (see kontak.sqlite_config).
turn_off_memory_statistics()
