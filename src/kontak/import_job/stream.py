"""The streamed write of a big import: its rows go into the database while the parsing child
is still checking the rest of the file, in ONE transaction, committed only once the whole
file is known to be clean.

The parsing child stages a big file in segments (``stage.segment_path``) and announces each
as it is complete; :class:`StreamedWrite` writes them as they come, on a thread of its own,
the same set-based way as :func:`kontak.import_job.apply.apply` (``bulk.insert_new``), so
that the database's work overlaps the checking instead of following it (1M rows: the write
was half of the import; completed 14.2 -> 11.0 s on SQLite, 26.2 -> 19.6 s on PostgreSQL).

It is optimistic, and used only where nothing stored can change what is written: not for
dry runs, and only when a row matching a stored contact would be refused anyway (``reject``)
or the organization holds no contacts. Anything else gives it up at once and rolls it back
— a segment with invalid rows, a key a unique index refuses (two rows of the file share it,
or a stored contact holds it), any database error, the file rejected or the child gone —
and the runner applies the complete staging file the usual way, which finds and reports
whatever happened. A crash at any point leaves the transaction uncommitted: nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from kontak.db.base import utcnow
from kontak.db.models import Organization
from kontak.db.session import begin_write
from kontak.import_job import bulk
from kontak.import_job.apply import Outcome, Record, elapsed
from kontak.import_job.staging import Stage
from kontak.tag import service as tag_service

log = logging.getLogger("kontak.import")
# At most this many segments: SQLite attaches each to the import's connection until the
# commit (it cannot detach inside a transaction) and allows ten attached files. Ten, not
# eight, since session 40: the last segments, written alone once the checking ends, are
# smaller (1M rows through the server, alternated pairs: ratio 0.96).
MAX_SEGMENTS = 10
# SQLite: the parsing workers run this much nicer than the writer while it writes their
# segments, so that the writer has a core of its own whenever it has rows to write.
# Shared evenly, the writer was left ~3 s of segments to write after the checking ended
# (session 11). +2 gave it ~0.9 of a core (CFS weights 1,024 against 2 x 655); since
# sessions 37-39 made the checking cheaper, the writer again had ~3 s left at the end, and
# +6 (any of +4 and up gives it the whole core) made 1M rows through the server 5-6%
# sooner: writer busy ~10.2 -> ~8.8 s, the checking ~0.3 s longer (session 40, four
# alternated pairs, ratios 0.86-0.96; +12 against +6: no difference). On PostgreSQL the
# writes are the server's: there it made the import slower (2 pairs: 34.1 / 33.8 s
# against 29.1 / 32.4 s), so it is not used.
SQLITE_WORKER_NICENESS = 6


def worker_niceness(dialect: str) -> int:
    """The niceness the parsing workers take while their segments are written."""
    return SQLITE_WORKER_NICENESS if dialect == "sqlite" else 0


def streams(session: Session, org: Organization, *, on_existing: str, dry_run: bool) -> bool:
    """Whether an import of ``org``'s may be written as it is checked (see module doc)."""
    if dry_run:
        return False
    return on_existing == "reject" or not bulk.holds_contacts(session, org.id)


class StreamedWrite:
    """Writes the segments of one import as the parsing child announces them, on a thread
    of its own (the runner goes on reading the child's progress meanwhile)."""

    def __init__(self, sessions: sessionmaker[Session], org: Organization, *, source: str):
        self._sessions = sessions
        self._org_id = org.id
        self._source = source
        self._now = utcnow()
        self._connection: Connection | None = None
        self._session: Session | None = None
        self._segments: queue.Queue[tuple[int, int, int, Path] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._rows = 0
        self._created = 0
        self._started = 0.0
        self.given_up = False
        # SQLite: the write holds, or is about to ask for, the one write turn; other writers
        # (the runner's progress) would wait for the whole write.
        self.holds_write_turn = False

    def add(self, number: int, rows: int, invalid: int, path: Path) -> None:
        """Segment ``number`` is staged at ``path``: have it written. Segments come in any
        order (two workers stage them at once); each row's contact id was drawn in file
        order all the same."""
        if self._thread is None:
            # Set here, in the runner's thread, before the writing thread asks for the turn:
            # set by that thread after its BEGIN IMMEDIATE, a progress line read meanwhile
            # sent the runner to wait for the turn, which the write kept while waiting for
            # the segments the blocked runner no longer announced (until the busy timeout
            # failed the import). Cleared when the write ends (_release).
            self.holds_write_turn = self._sessions.kw["bind"].dialect.name == "sqlite"
            self._thread = threading.Thread(target=self._run, name="import-stream", daemon=True)
            self._thread.start()
        self._segments.put((number, rows, invalid, path))

    def finish(self, rows_total: int, stage: Stage, record: Record) -> Outcome | None:
        """After the child's DONE: once every segment is written, commit, when they hold
        every row of the file and none invalid, with the job's end written by ``record`` in
        the same transaction; else None (rolled back: apply the staging file as usual)."""
        self._stop()
        try:
            if (
                self.given_up
                or self._session is None
                or self._rows != rows_total
                or stage.count_errors()
            ):
                return None
            committing = time.monotonic()
            outcome = Outcome(status="completed", created=self._created)
            record(self._session, outcome)
            self._session.commit()
            log.info(
                "import: %d contacts written as checked, %.2f s after the first segment;"
                " committed in %.2f s",
                self._created,
                elapsed(self._started),
                elapsed(committing),
            )
            return outcome
        except Exception as exc:
            if not bulk.is_database_error(exc):
                raise
            log.info("import: the streamed write's commit failed (%s)", type(exc).__name__)
            return None
        finally:
            self._release()

    def close(self) -> None:
        """Stop writing; roll back whatever is not committed; give the connection back."""
        self.given_up = True
        self._stop()
        self._release()

    def _stop(self) -> None:
        if self._thread is not None:
            self._segments.put(None)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        idle = time.monotonic()
        while (item := self._segments.get()) is not None:
            number, rows, invalid, path = item
            if self.given_up:
                continue
            if invalid:
                self._give_up(f"segment {number} holds invalid rows")
                continue
            # How long the writer waited for this segment (none: it was behind): what
            # tells whether the segments' sizes keep it busy.
            waited = time.monotonic() - idle if self._session is not None else 0.0
            try:
                self._write(number, rows, path, waited)
            except Exception as exc:
                if not bulk.is_database_error(exc):
                    log.exception("import: the streamed write failed")
                self._give_up(f"segment {number}: {type(exc).__name__}")
            idle = time.monotonic()

    def _give_up(self, why: str) -> None:
        log.info("import: streamed write given up (%s); the file is applied whole", why)
        self.given_up = True
        self._release()

    def _release(self) -> None:
        session, connection = self._session, self._connection
        self._session = self._connection = None
        try:
            if session is not None:
                try:
                    session.rollback()
                finally:
                    session.close()
            if connection is not None:
                try:
                    bulk.detach_stage(connection)
                finally:
                    connection.close()
        finally:
            self.holds_write_turn = False

    def _begin(self) -> Session:
        connection = self._sessions.kw["bind"].connect()
        try:
            bulk.prepare_connection(connection)
            session = self._sessions(bind=connection)
            begin_write(session)
            bulk.prepare_write(session)
        except BaseException:
            connection.close()
            raise
        self._connection, self._session = connection, session
        self._started = time.monotonic()
        return session

    def _write(self, number: int, rows: int, path: Path, waited: float) -> None:
        session = self._session or self._begin()
        started = time.monotonic()
        stage = Stage(path)
        try:
            schema = f"segment{number}"
            bulk.attach_stage(session, path, schema)
            tag_ids = tag_service.ensure_tags(session, self._org_id, stage.tag_names())
            self._created += bulk.insert_new(
                session,
                self._org_id,
                stage,
                source=self._source,
                now=self._now,
                tag_ids=tag_ids,
                schema=schema,
            )
        finally:
            stage.close()
        self._rows += rows
        log.info(
            "import: segment %d (%d rows) written in %.2f s, after %.2f s waiting for it",
            number,
            rows,
            elapsed(started),
            waited,
        )
