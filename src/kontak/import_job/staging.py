"""The staging file of one import: every row as read, normalized, with its keys and errors.

A private SQLite file per job (``<job dir>/stage.db``), written by the parsing child and
read by the runner and the report endpoints. It keeps the main database free of half-checked
data and lets SQLite find duplicates with GROUP BY instead of Python holding every key.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, Final

from kontak.files.cells import cell_text
from kontak.import_job.checks import RowChecker, RowError
from kontak.messages import Text, restore, stored

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE row (
    row INTEGER PRIMARY KEY, cells TEXT NOT NULL, valid INTEGER NOT NULL, contact_id TEXT,
    name TEXT, email TEXT, email_key TEXT, phone TEXT, channel TEXT, address TEXT,
    custom_fields TEXT, tags TEXT
);
CREATE TABLE key (
    row INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, display TEXT, id TEXT
);
CREATE TABLE error (row INTEGER NOT NULL, col TEXT, value TEXT, message TEXT NOT NULL, data TEXT);
CREATE TABLE tag_link (row INTEGER NOT NULL, name TEXT NOT NULL);
CREATE TABLE existing (row INTEGER NOT NULL, kind TEXT, value TEXT, contact_id TEXT NOT NULL);
CREATE TABLE matched (
    row INTEGER PRIMARY KEY, contact_id TEXT NOT NULL, ambiguous INTEGER NOT NULL
);
"""
BATCH: Final = 5000
# One encoder, built once: json.dumps() re-creates it (and checks its options) every call.
_dumps: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


# Rows per INSERT statement of the staging writes (below SQLite's oldest limit of 999
# variables for the widest table, 12 columns).
ROWS_PER_INSERT: Final = 64


def _insert(db: sqlite3.Connection, table: str, width: int, rows: list[tuple[Any, ...]]) -> None:
    """Append ``rows`` (tuples of ``width`` values) to ``table`` in order, ROWS_PER_INSERT
    to a statement: a statement per row cost its own bindings' setup, step, reset and
    descent to the table's end (a worker's staging writes: ~27% less CPU)."""
    one = "(" + ",".join("?" * width) + ")"
    full = len(rows) - len(rows) % ROWS_PER_INSERT
    if full:
        db.executemany(
            f"INSERT INTO {table} VALUES " + ",".join([one] * ROWS_PER_INSERT),
            (
                tuple(chain.from_iterable(rows[i : i + ROWS_PER_INSERT]))
                for i in range(0, full, ROWS_PER_INSERT)
            ),
        )
    if full < len(rows):
        rest = rows[full:]
        db.execute(
            f"INSERT INTO {table} VALUES " + ",".join([one] * len(rest)),
            tuple(chain.from_iterable(rest)),
        )


Records = tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]], list[str]]


def records(
    number: int,
    values: dict[str, Any],
    row_errors: Sequence[RowError],
    cells: Sequence[str],
    contact_id: str,
    social_ids: Iterator[str],
    *,
    printable: bool = False,
) -> Records:
    """The staging rows of spreadsheet row ``number``, checked (its ``values`` and
    errors): (row, keys, errors, tags); its social accounts take their row ids from
    ``social_ids``.

    Pure, so that the worker processes that check rows also prepare what is written.
    ``printable``: every cell is known to be printable (no NUL in them), as the fast
    path of the check makes sure.
    """
    tags = values.get("tags") or []
    custom = values.get("custom_fields")
    if custom:
        custom = {k: x for k, x in custom.items() if x is not None}
    row = (
        number,
        "\0" + "\0".join(cells) if printable else cells_text(cells),
        0 if row_errors else 1,
        contact_id,
        values.get("name"),
        values.get("email"),
        values.get("email_key"),
        values.get("phone"),
        values.get("channel"),
        values.get("address"),
        _dumps(custom) if custom else "",
        _json_strings(tags) if tags else "",
    )
    # Emails and phones are found in their row's columns; social accounts, any number per
    # row, are keys of their own.
    # (Each loop only when it has something to do: an iterator made for nothing cost
    # ~370 instructions, three a row.)
    keys: list[tuple[Any, ...]] = []
    socials = values.get("social_accounts")
    if socials:
        for social in socials:
            # Social accounts get their row id here, so the database can insert them in SQL.
            keys.append((number, social.platform, social.key, social.handle, next(social_ids)))
    errors = (
        [(e.row, e.column, e.value, e.message, stored(e.message)) for e in row_errors]
        if row_errors
        else []
    )
    return row, keys, errors, tags


def prepare(
    checker: RowChecker,
    chunk: Sequence[tuple[int, list[Any]]],
    ids: Iterator[str],
    social_ids: Iterator[str],
) -> list[Records]:
    """Check each numbered row of ``chunk`` and turn it into staging records; contact ids
    come from ``ids``, one a row."""
    out = []
    for row, cells in chunk:
        fast = checker.fast(cells)  # RowChecker.check, its fast path first
        if fast is not None:
            # The fast path takes printable text cells only and changes none: no copies
            # needed (a workbook's number in the phone column comes back as text).
            values, texts = fast
            out.append(records(row, values, (), texts, next(ids), social_ids, printable=True))
            continue
        checked = checker.check_any(row, list(cells))
        texts = [c if isinstance(c, str) else cell_text(c) for c in cells]
        out.append(records(row, checked.values, checked.errors, texts, next(ids), social_ids))
    return out


def _json_strings(values: list[str]) -> str:
    """``_dumps(values)`` for a list of strings, without the encoder's per-call work when
    no string needs escaping (printable, no quote, no backslash): ~1.2 µs a tagged row
    of a big file, ~6% of checking it."""
    joined = '","'.join(values)
    # The separators hold all the quotes of a list whose strings hold none.
    if joined.count('"') != 2 * len(values) - 2 or "\\" in joined or not joined.isprintable():
        return _dumps(values)
    return '["' + joined + '"]'


def cells_text(cells: Sequence[str]) -> str:
    """A row's cells as stored: each after a NUL (a character no cell holds in practice;
    joining is ~10x cheaper than JSON), or as JSON when one does."""
    text = "\0" + "\0".join(cells)
    if cells and text.count("\0") == len(cells):
        return text
    return _dumps(list(cells))


def cells_from(text: str) -> list[str]:
    """The cells that :func:`cells_text` stored."""
    if text.startswith("\0"):
        return text[1:].split("\0")
    return list(json.loads(text))


_GROUPS_SAVED = "duplicate_groups_saved"  # meta key: the duplicate table is complete
_PENDING = "pending_segments"  # meta key: segment files not appended yet (Stage.finish)
# (kind, key column, shown column) of the identities kept in a row's own columns.
_SHARED = (("email", "email_key", "email"), ("phone", "phone", "phone"))
# Every staged key a contact of the organization holds: rows' emails and phones, every
# social account (the main database attached as ``kontak``, see Stage.match_stored).
_MATCH_STORED = """
INSERT INTO existing (row, kind, value, contact_id)
SELECT r.row, 'email', c.email, c.id FROM row r
  JOIN kontak.contact c ON c.organization_id = :org AND c.email_key = r.email_key
UNION ALL
SELECT r.row, 'phone', c.phone, c.id FROM row r
  JOIN kontak.contact c ON c.organization_id = :org AND c.phone = r.phone
UNION ALL
SELECT k.row, k.kind, s.handle, s.contact_id FROM key k
  JOIN kontak.social_account s
    ON s.organization_id = :org AND s.platform = k.kind AND s.handle_key = k.key
"""


def _append(db: sqlite3.Connection, parts: Sequence[Path]) -> None:
    """Append the staging files ``parts`` to the one ``db`` holds, in order."""
    for part in parts:
        db.execute("ATTACH DATABASE ? AS part", (str(part),))
        db.execute("BEGIN")
        for table in ("row", "key", "error", "tag_link"):
            db.execute(f"INSERT INTO main.{table} SELECT * FROM part.{table} ORDER BY rowid")
        db.execute("COMMIT")
        db.execute("DETACH DATABASE part")


@dataclass(frozen=True, slots=True)
class DuplicateGroup:
    kind: str
    value: str
    rows: list[int]


class Stage:
    """Read and write access to one job's staging file."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = path
        if create:
            path.unlink(missing_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # A new file is written once, by the parsing child: no journal (a failure there
        # ends the job, and the file goes with it). An existing file is written on by the
        # import's step (matches of stored contacts, groups), which an error can cut short:
        # with no journal, its ROLLBACK left the pages already written, and the file
        # malformed for the job's pages. The journal holds the pages a transaction
        # changes that were there before it (few: its writes mostly append), and a
        # process killed midway leaves it for the next opening to roll back.
        self.db.execute(f"PRAGMA journal_mode={'OFF' if create else 'DELETE'}")
        self.db.execute("PRAGMA synchronous=OFF")
        if create:
            self.db.executescript(SCHEMA)
        self._rows: list[tuple[Any, ...]] = []
        self._keys: list[tuple[Any, ...]] = []
        self._errors: list[tuple[Any, ...]] = []
        self._tag_links: list[tuple[int, str]] = []
        self.tags: set[str] = set()
        self.rows_added = 0
        self.invalid_rows = 0

    def close(self) -> None:
        self.db.close()

    # --- writing (the parsing child) ---------------------------------------------------

    def add(self, records: Records) -> None:
        """Append one row's records (made by :func:`records`, maybe in another process)."""
        row, keys, errors, tags = records
        self._rows.append(row)
        self.rows_added += 1
        if errors:
            self.invalid_rows += 1
        self._keys.extend(keys)
        self._errors.extend(errors)
        if tags:
            self.tags.update(tags)
            self._tag_links.extend((row[0], t) for t in tags)
        if len(self._rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        with self.db:
            self.db.execute("BEGIN")
            _insert(self.db, "row", 12, self._rows)
            _insert(self.db, "key", 5, self._keys)
            _insert(self.db, "error", 5, self._errors)
            _insert(self.db, "tag_link", 2, self._tag_links)
            self.db.execute("COMMIT")
        self._rows.clear()
        self._keys.clear()
        self._errors.clear()
        self._tag_links.clear()

    def finish(self, meta: dict[str, Any], tags: set[str], pending: Sequence[str] = ()) -> None:
        """Record the file's facts and index what the runner looks up (after all rows).
        ``pending``: the names of segment files (beside this one, in file order) whose rows
        are appended only if someone needs them (:meth:`assemble`); the indexes wait for
        them."""
        self.flush()
        meta = {**meta, "tags": sorted(tags)}
        if pending:
            meta[_PENDING] = list(pending)
        self.db.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [(k, json.dumps(v, ensure_ascii=False)) for k, v in meta.items()],
        )
        if not pending:
            self._index()

    def _index(self) -> None:
        self.db.execute("CREATE INDEX IF NOT EXISTS key_kind_key ON key (kind, key)")
        self.db.execute("CREATE INDEX IF NOT EXISTS error_row ON error (row)")

    @staticmethod
    def append(path: Path, parts: Sequence[Path]) -> None:
        """Append to the staging file ``path`` the staging files that other worker processes
        wrote for the rows after its own, in order: rows stay in file order and each row's
        keys and errors in theirs."""
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            _append(db, parts)
        finally:
            db.close()

    def pending_segments(self) -> list[Path]:
        """The segment files whose rows this staging file does not hold yet (see
        :meth:`finish`), in file order."""
        return [self.path.with_name(name) for name in self.meta(_PENDING, [])]

    def assemble(self) -> None:
        """Append the pending segments' rows, then index: the staging file is then whole,
        as if one process had written it. Nothing to do when none are pending.

        The parsing child leaves them pending when the runner writes the segments as they
        come (``import_job.stream``): once that write commits, nobody reads the rows again,
        and appending them cost ~11k CPU instructions a row (~5% of a SQLite import's CPU;
        on two cores it ran beside the writer's last segments, so no time was lost)."""
        parts = self.pending_segments()
        if not parts:
            return
        missing = [p.name for p in parts if not p.exists()]
        if missing:
            raise FileNotFoundError(f"staging segments gone: {', '.join(missing)}")
        _append(self.db, parts)
        self._index()
        self.db.execute("DELETE FROM meta WHERE key = ?", (_PENDING,))

    def settle(self) -> None:
        """Forget the pending segments without appending them: every row was written as
        checked and committed, so the report and duplicates pages have nothing to show."""
        self.db.execute("DELETE FROM meta WHERE key = ?", (_PENDING,))

    # --- reading (the runner and the reports) -------------------------------------------

    def meta(self, key: str, default: Any = None) -> Any:
        found = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(found[0]) if found else default

    def tag_names(self) -> list[str]:
        """Every tag name the staged rows carry."""
        return [n for (n,) in self.db.execute("SELECT DISTINCT name FROM tag_link ORDER BY name")]

    def count_errors(self) -> int:
        """Row errors staged, those of pending segments included."""
        count = int(self.db.execute("SELECT COUNT(*) FROM error").fetchone()[0])
        for part in self.pending_segments():
            db = sqlite3.connect(f"{part.resolve().as_uri()}?mode=ro", uri=True)
            try:
                count += int(db.execute("SELECT COUNT(*) FROM error").fetchone()[0])
            finally:
                db.close()
        return count

    def duplicate_groups(self) -> list[DuplicateGroup]:
        """Every normalized value that two or more rows of the file share: as saved by
        :meth:`save_duplicate_groups` (the runner's, once per job), else found now (1M
        rows: ~1 s, which the report and the duplicates pages paid again each time)."""
        if self.meta(_GROUPS_SAVED, False):
            return [
                DuplicateGroup(kind, value, json.loads(rows))
                for kind, value, rows in self.db.execute(
                    "SELECT kind, value, rows FROM duplicate ORDER BY rowid"
                )
            ]
        return self.find_duplicate_groups()

    def save_duplicate_groups(self, groups: list[DuplicateGroup]) -> None:
        """Keep what :meth:`find_duplicate_groups` found, for every later reader."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("DROP TABLE IF EXISTS duplicate")
            self.db.execute("CREATE TABLE duplicate (kind TEXT, value TEXT, rows TEXT)")
            self.db.executemany(
                "INSERT INTO duplicate VALUES (?, ?, ?)",
                ((g.kind, g.value, json.dumps(g.rows)) for g in groups),
            )
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, 'true')", (_GROUPS_SAVED,))
            self.db.execute("COMMIT")

    def find_duplicate_groups(self) -> list[DuplicateGroup]:
        """Every normalized value that two or more rows of the file share, found in the
        staged rows."""
        # One pass each: the shared values (a GROUP BY), then the rows holding them (a scan
        # that looks each value up in the list of shared ones); no index to build first.
        # Each query on a connection of its own, at once (SQLite lets go of the GIL): 1M
        # rows, 1.3 -> 0.7 s on two cores.
        queries = [
            f"SELECT '{kind}', {key}, row, {display} FROM row WHERE {key} IN"
            f" (SELECT {key} FROM row WHERE {key} <> '' GROUP BY {key} HAVING COUNT(*) > 1)"
            " ORDER BY row"
            for kind, key, display in _SHARED
        ]
        queries.append(
            "SELECT kind, key, row, display FROM key WHERE (kind, key) IN"
            " (SELECT kind, key FROM key GROUP BY kind, key HAVING COUNT(*) > 1) ORDER BY row"
        )
        with ThreadPoolExecutor(len(queries)) as pool:
            results = list(pool.map(self._read, queries))
        found: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for result in results:
            for kind, value, row, shown in result:
                found.setdefault((kind, value), []).append((int(row), shown))
        groups = [
            DuplicateGroup(kind, rows[0][1], sorted({r for r, _ in rows}))
            for (kind, _value), rows in found.items()
        ]
        groups.sort(key=lambda g: (g.rows[0], g.kind))
        return groups

    def _read(self, sql: str) -> list[tuple[Any, ...]]:
        """All rows of ``sql``, read on a read-only connection of its own."""
        db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()

    def errors(self, limit: int | None = None) -> Iterator[tuple[int, str, str, str]]:
        """(row, column, value, message) in row order, read as they are taken; messages
        come back as translatable Texts."""
        sql = "SELECT row, col, value, message, data FROM error ORDER BY row, rowid"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        for r, c, v, m, d in self.db.cursor().execute(sql):
            yield r, c, v, restore(m, d)

    def cells(self, rows: Sequence[int]) -> dict[int, list[str]]:
        found: dict[int, list[str]] = {}
        for start in range(0, len(rows), 500):
            chunk = list(rows[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for row, cells in self.db.execute(
                f"SELECT row, cells FROM row WHERE row IN ({marks})", chunk
            ):
                found[int(row)] = cells_from(cells)
        return found

    def save_existing(self, matches: Iterable[tuple[int, str, str, str]]) -> None:
        """Record (row, kind, stored value, contact id) of every staged key that a stored
        contact holds, in place of any recorded before (taken as they come)."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM existing")
            self.db.executemany("INSERT INTO existing VALUES (?,?,?,?)", matches)
            self._summarize()
            self.db.execute("COMMIT")

    def match_stored(self, database: str, organization_id: str) -> None:
        """SQLite: record in ``existing`` every staged key that a contact of the
        organization holds in the main database file ``database``, read on this file's own
        connection: no match passes through Python (a re-uploaded 1M-row file has ~2.4M;
        held as a list they took ~1 GB).

        Called inside the import's write transaction and before that transaction reads
        this file: it holds the write lock, so no one can commit between this read and its
        own (WAL), and once it has read this file, this write would wait for its end."""
        self.db.execute("ATTACH DATABASE ? AS kontak", (database,))
        try:
            with self.db:
                self.db.execute("BEGIN")
                self.db.execute("DELETE FROM existing")
                self.db.execute(_MATCH_STORED, {"org": organization_id})
                self._summarize()
                self.db.execute("COMMIT")
        finally:
            self.db.execute("DETACH DATABASE kontak")

    def _summarize(self) -> None:
        """Index the matches (the pages and the report read them in row order, a few at a
        time) and sum them up a row each in ``matched``: the row's contact (the smallest
        id, when it matches several: ``ambiguous``).

        The index holds the contact id, so that the sum reads the index alone: the matches
        come as three runs (emails, phones, accounts), each in row order, and reading the
        table in the index's order jumped between them (a re-uploaded 1M-row file, 2.4M
        matches: the index and the sum 4.6 -> 2.2 s)."""
        self.db.execute(
            "CREATE INDEX IF NOT EXISTS existing_row ON existing (row, kind, contact_id)"
        )
        self.db.execute("DELETE FROM matched")
        self.db.execute(
            "INSERT INTO matched SELECT row, MIN(contact_id), MIN(contact_id) <> MAX(contact_id)"
            " FROM existing GROUP BY row"
        )

    def match_counts(self) -> tuple[int, list[tuple[int, list[str]]]]:
        """How many rows match stored contacts, and the rows that match two or more
        different ones (row, their ids)."""
        (rows,) = self.db.execute("SELECT COUNT(*) FROM matched").fetchone()
        ambiguous = [
            (int(row), sorted(str(ids).split(",")))
            for row, ids in self.db.execute(
                "SELECT e.row, group_concat(DISTINCT e.contact_id) FROM matched m"
                " JOIN existing e ON e.row = m.row WHERE m.ambiguous GROUP BY e.row ORDER BY e.row"
            )
        ]
        return int(rows), ambiguous

    def matched_rows(self) -> Iterator[int]:
        """The rows that match stored contacts, in order, read as they are taken."""
        for (row,) in self.db.cursor().execute("SELECT row FROM matched ORDER BY row"):
            yield int(row)

    def shared_matches(self) -> dict[int, str]:
        """{row: contact id} of the rows whose contact other rows match too (none is
        ambiguous when this is asked: such a file is rejected)."""
        return {
            int(row): str(contact_id)
            for row, contact_id in self.db.execute(
                "SELECT row, contact_id FROM matched WHERE contact_id IN"
                " (SELECT contact_id FROM matched GROUP BY contact_id HAVING COUNT(*) > 1)"
                " ORDER BY row"
            )
        }

    def duplicate_rows(self, groups: list[DuplicateGroup]) -> set[int]:
        """Rows that share a normalized value with another row of the file."""
        return {row for group in groups for row in group.rows}

    def replace_ambiguity_errors(self, ambiguous: list[tuple[int, list[str]]]) -> None:
        """Record rows that match two different existing contacts as row errors."""
        self.db.execute("DELETE FROM error WHERE data LIKE ?", ('%"row.ambiguous"%',))
        texts = [(row, ids, Text("row.ambiguous", ids=", ".join(ids))) for row, ids in ambiguous]
        self.db.executemany(
            "INSERT INTO error VALUES (?,?,?,?,?)",
            [(row, "", ", ".join(ids), text, stored(text)) for row, ids, text in texts],
        )

    def count_existing(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM existing").fetchone()[0])

    def existing(self, limit: int | None = None) -> Iterator[tuple[int, str, str, str]]:
        """(row, kind, stored value, contact id) of the rows that match stored contacts, in
        row order, read as they are taken (a cursor of its own)."""
        sql = "SELECT row, kind, value, contact_id FROM existing ORDER BY row, kind"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        yield from self.db.cursor().execute(sql)

    def valid_rows(self) -> Iterator[tuple[Any, ...]]:
        """Valid rows in file order: (row, contact id, name, email, email key, phone, channel,
        address, custom fields JSON, tags JSON)."""
        # A cursor of its own: callers read two of these streams at once.
        yield from self.db.cursor().execute(
            """
            SELECT row, contact_id, name, email, email_key, phone, channel, address,
                   custom_fields, tags
            FROM row WHERE valid = 1 ORDER BY row
            """
        )

    def socials(self) -> Iterator[tuple[int, str, str, str, str, str]]:
        """(row, contact id, platform, handle, handle key, id) of the valid rows' accounts."""
        yield from self.db.cursor().execute(
            """
            SELECT k.row, r.contact_id, k.kind, k.display, k.key, k.id
            FROM key k JOIN row r ON r.row = k.row
            WHERE r.valid = 1 AND k.kind NOT IN ('email', 'phone') ORDER BY k.rowid
            """
        )
