"""Ids: ULID text, sortable by creation, and the fast sequence equals the plain encoding."""

from __future__ import annotations

import itertools
import os

from kontak.ids import _encode, new_id, sequence_from

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def reference(value: int) -> str:
    chars = []
    for _ in range(26):
        value, rem = divmod(value, 32)
        chars.append(CROCKFORD[rem])
    return "".join(reversed(chars))


def test_encoding_matches_the_ulid_reference() -> None:
    for _ in range(5000):
        value = int.from_bytes(os.urandom(16), "big")
        assert _encode(value) == reference(value)


def test_sequence_crosses_block_boundaries_in_order() -> None:
    start = (0x0123456789AB << 80) | (0xFFFFF - 5)
    ids = list(itertools.islice(sequence_from(start), 20))
    assert ids == [reference(start + i) for i in range(1, 21)]
    assert ids == sorted(ids)


def test_new_ids_are_26_characters_and_unique() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 26 and set(i) <= set(CROCKFORD) for i in ids)
