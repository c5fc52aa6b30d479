"""Row ids: ULIDs, sortable by creation time. No database import here: the import's
parsing child draws ids and starts faster without SQLAlchemy."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from typing import Final

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id() -> str:
    """A 26-character ULID: sortable by creation time, opaque to clients."""
    return _encode((int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big"))


def id_sequence() -> Iterator[str]:
    """ULIDs that increase strictly in the order drawn (one import's rows keep file order).

    Only the last four characters (20 bits) change from one id to the next, so they come
    from a table and the other 22 are encoded once per million ids.
    """
    return sequence_from(id_start())


def id_start() -> int:
    """A ULID value for now, with room above it for a long sequence."""
    return (int(time.time() * 1000) << 80) | (int.from_bytes(os.urandom(10), "big") >> 1)


def sequence_from(value: int) -> Iterator[str]:
    """The ULIDs of ``value + 1``, ``value + 2``, … (see :func:`id_sequence`)."""
    high, first = (value + 1) >> 20, (value + 1) & 0xFFFFF
    while True:
        prefix = _encode(high << 20)[:22]
        for n in range(first, 0x100000):
            yield prefix + _PAIRS[n >> 10] + _PAIRS[n & 0x3FF]
        high, first = high + 1, 0


_PAIRS: Final = [a + b for a in _CROCKFORD for b in _CROCKFORD]
_FROM_BASE32 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD)


def _encode(value: int) -> str:
    """The 128-bit ``value`` as 26 Crockford base-32 characters (ULID text)."""
    # 26 characters hold 130 bits: shift so that base64's 160-bit groups start with them.
    return base64.b32encode((value << 30).to_bytes(20, "big")).decode()[:26].translate(_FROM_BASE32)
