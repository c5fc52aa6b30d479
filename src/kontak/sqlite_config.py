"""SQLite's process-wide settings, made before the process's first connection.

SQLite keeps statistics of its memory by default: every allocation it makes takes a
global mutex and updates counters. Kontak never reads them (no ``sqlite3_status()``, no
heap limit pragmas), and SQLite's own list of recommended build options turns them off
(``SQLITE_DEFAULT_MEMSTATUS=0``, as Node.js and better-sqlite3 build it). Staging a
checked row of an import costs ~2,700 CPU instructions less without them (callgrind,
session 37), and the import's writer and every create save their share too.

Python's ``sqlite3`` module has no ``sqlite3_config()``, so it is called through ctypes on
the shared library the module links (``dlopen`` of the same name returns the object
already loaded, or the one the module will then be given). Python 3.11's module
initializes SQLite when it is imported, after which ``sqlite3_config()`` refuses
(``SQLITE_MISUSE``): so this runs from the package's ``__init__``, before any module of
Kontak imports ``sqlite3``. Where it cannot (another program imported ``sqlite3`` first,
no such library), SQLite keeps its default and nothing else changes.
"""

from __future__ import annotations

import sys

SQLITE_OK = 0
SQLITE_CONFIG_MEMSTATUS = 9
_LIBRARIES = ("libsqlite3.so.0", "libsqlite3.0.dylib", "libsqlite3.dylib")

memory_statistics_off = False  # set by turn_off_memory_statistics(), read by the logs


def turn_off_memory_statistics() -> bool:
    """Turn SQLite's memory statistics off for this process, if SQLite has not started;
    True when done (also when an earlier call did it)."""
    global memory_statistics_off
    if memory_statistics_off:
        return True
    if "_sqlite3" in sys.modules:  # SQLite has started: too late, and harmless to skip
        return False
    try:
        import ctypes
    except ImportError:  # a Python built without ctypes
        return False
    for name in _LIBRARIES:
        try:
            library = ctypes.CDLL(name)
        except OSError:
            continue
        answer: int = library.sqlite3_config(SQLITE_CONFIG_MEMSTATUS, ctypes.c_int(0))
        done = answer == SQLITE_OK
        memory_statistics_off = done
        return done
    return False
