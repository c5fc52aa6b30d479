"""SQLite writers of one process queue on the engine's lock before SQLite's busy handler:
many threads writing at once are serialized and all get their turn, a connection that
writes twice does not wait for itself, and a failed writer passes the turn on. (What the
lock is for, tail latency under concurrent writes, is measured by benchmarks/create.py.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from kontak.db.session import WRITE_OPTION, dispose, make_engine, make_sessionmaker, session_scope


def _engine_with_table(tmp_path: Path, columns: str, **options: Any) -> Engine:
    """A fresh SQLite engine whose database holds the table ``t (columns)``."""
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}", **options)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE t ({columns})"))
    return engine


def test_concurrent_writers_all_get_their_turn(tmp_path: Path) -> None:
    # Busy handler alone, with 0.2 s of patience: 16 threads writing at once time out
    # ("database is locked"); queued on the lock, every write goes through.
    engine = _engine_with_table(tmp_path, "thread INTEGER, n INTEGER", busy_timeout_s=0.2)
    sessions = make_sessionmaker(engine)
    errors: list[BaseException] = []

    def writer(me: int) -> None:
        try:
            for _ in range(25):
                with session_scope(sessions, write=True) as session:
                    count = session.execute(text("SELECT COUNT(*) FROM t")).scalar_one()
                    session.execute(text("INSERT INTO t VALUES (:me, :n)"), {"me": me, "n": count})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engine.connect() as conn:
        seen = [n for (n,) in conn.execute(text("SELECT n FROM t ORDER BY rowid"))]
    assert seen == list(range(16 * 25))  # each writer saw all earlier writes: serialized
    engine.dispose()


def test_a_session_that_writes_twice_and_fails_leaves_the_turn(tmp_path: Path) -> None:
    engine = _engine_with_table(tmp_path, "x INTEGER PRIMARY KEY", busy_timeout_s=5)
    sessions = make_sessionmaker(engine)
    with session_scope(sessions, write=True) as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
        session.commit()
        session.execute(text("INSERT INTO t VALUES (2)"))  # same connection, second write
    with (
        pytest.raises(IntegrityError, match="UNIQUE"),
        session_scope(sessions, write=True) as session,
    ):
        session.execute(text("INSERT INTO t VALUES (2)"))  # refused: rolled back
    done = threading.Event()

    def other() -> None:
        with session_scope(sessions, write=True) as session:
            session.execute(text("INSERT INTO t VALUES (3)"))
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(4)  # well under the 5 s the lock would make it wait if it were kept
    assert done.is_set()
    with engine.connect() as conn:
        assert [x for (x,) in conn.execute(text("SELECT x FROM t"))] == [1, 2, 3]
    engine.dispose()


def test_write_sessions_of_every_thread_share_one_warm_connection(tmp_path: Path) -> None:
    # SQLite drops a connection's page cache whenever ANOTHER connection wrote: writers
    # spread over the pool each re-read what they touch (FTS5 merges: tens of MiB at a
    # million contacts). All write sessions go through one connection, with a big cache;
    # reads keep the pool, and nobody waits on the writer to read.
    engine = _engine_with_table(tmp_path, "x INTEGER", cache_mb=48)
    sessions = make_sessionmaker(engine)
    seen: list[int] = []
    caches: list[int] = []

    def writer(x: int) -> None:
        with session_scope(sessions, write=True) as session:
            raw = session.connection().connection.dbapi_connection
            seen.append(id(raw))
            caches.append(session.execute(text("PRAGMA cache_size")).scalar_one())
            session.execute(text("INSERT INTO t VALUES (:x)"), {"x": x})

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1
    assert caches == [-48 * 1024] * 8
    with session_scope(sessions, write=True) as writing:
        writing.execute(text("INSERT INTO t VALUES (99)"))
        with session_scope(sessions) as reading:  # a reader meanwhile: its own connection
            reader = reading.connection().connection.dbapi_connection
            assert id(reader) not in seen
            assert reading.execute(text("SELECT COUNT(*) FROM t")).scalar_one() == 8
    dispose(engine)


def test_the_writer_and_the_pool_queue_on_one_lock(tmp_path: Path) -> None:
    # Background writers (the search catch-up) begin on the engine itself, not through
    # session_scope: they must wait for a write session's turn, not for SQLite's busy
    # handler (here 0.2 s of patience: without the shared lock, "database is locked").
    engine = _engine_with_table(tmp_path, "x INTEGER", busy_timeout_s=0.2)
    sessions = make_sessionmaker(engine)
    errors: list[BaseException] = []

    def background() -> None:
        try:
            for i in range(20):
                options = {WRITE_OPTION: True}
                with engine.connect().execution_options(**options) as conn, conn.begin():
                    conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": i})
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=background)
    thread.start()
    for i in range(20):
        with session_scope(sessions, write=True) as session:
            session.execute(text("INSERT INTO t VALUES (:x)"), {"x": 100 + i})
            time.sleep(0.02)
    thread.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM t")).scalar_one() == 40
    dispose(engine)


_PROCESS_WRITER = """
import sys, time
from sqlalchemy import text
from kontak.db.session import make_engine, make_sessionmaker, session_scope
engine = make_engine(sys.argv[1], busy_timeout_s=0.3)
sessions = make_sessionmaker(engine)
for n in range(25):
    with session_scope(sessions, write=True) as session:
        session.execute(text("INSERT INTO t VALUES (:who, :n)"), {"who": sys.argv[2], "n": n})
        time.sleep(0.03)  # a slow write: the other process waits 30 ms
    time.sleep(0.003)  # the gap in which the other process must get its turn
"""


def test_processes_take_turns_through_the_lock_file(tmp_path: Path) -> None:
    # Two processes (server workers, a CLI import) writing one file: with SQLite's busy
    # handler alone the waiter sleeps in growing steps (25, 50, 100 ms...), misses the
    # 3 ms gaps and times out ("database is locked"); on the lock file it gets its turn.
    import subprocess
    import sys

    engine = _engine_with_table(tmp_path, "who TEXT, n INTEGER")
    url = str(engine.url)
    dispose(engine)
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS_WRITER, url, who], stderr=subprocess.PIPE, text=True
        )
        for who in ("a", "b")
    ]
    ends = [(run.communicate(timeout=120)[1], run.returncode) for run in runs]
    assert [code for _err, code in ends] == [0, 0], ends
    assert (tmp_path / "w.db-writelock").exists()
    engine = make_engine(url)
    with engine.connect() as conn:
        count = conn.execute(text("SELECT who, COUNT(*) FROM t GROUP BY who")).all()
    dispose(engine)
    assert count == [("a", 25), ("b", 25)]


def test_a_write_session_takes_the_turn_at_its_first_statement(tmp_path: Path) -> None:
    # A request opens its write session before signing the caller in; the turn (and, on
    # SQLite, the one writer connection) was taken right then, so every other write waited
    # for the whole request instead of its statements.
    engine = _engine_with_table(tmp_path, "x INTEGER", busy_timeout_s=5)
    sessions = make_sessionmaker(engine)
    other_wrote = threading.Event()

    def other() -> None:
        with session_scope(sessions, write=True) as session:
            session.execute(text("INSERT INTO t VALUES (2)"))
        other_wrote.set()

    with session_scope(sessions, write=True) as session:
        worker = threading.Thread(target=other)
        worker.start()
        assert other_wrote.wait(5), "the other write waited for a session that wrote nothing"
        session.execute(text("INSERT INTO t VALUES (1)"))
    worker.join(5)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT x FROM t ORDER BY rowid")).scalars().all() == [2, 1]
    dispose(engine)


def test_waiting_for_another_process_costs_no_tries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two locks on one file stand for two processes (flock excludes open files). A server
    # process waiting through another's 1M-row import tried every 0.5 ms: ~0.24 s of CPU;
    # then every 0.5-10 ms. It waits in the kernel now, which wakes it when the lock is free.
    import fcntl

    from kontak.db.session import WriteLock

    path = tmp_path / "db-writelock"
    holder, waiter = WriteLock(path), WriteLock(path)
    tries = [0]
    flock = fcntl.flock

    def counted(fd: int, operation: int) -> None:
        if operation & fcntl.LOCK_EX:
            tries[0] += 1
        flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", counted)
    assert holder.acquire(timeout=1)
    tries[0] = 0
    released_at: list[float] = []

    def release_later() -> None:
        time.sleep(1.0)
        released_at.append(time.monotonic())
        holder.release()

    thread = threading.Thread(target=release_later)
    thread.start()
    assert waiter.acquire(timeout=10)
    got = time.monotonic()
    thread.join()
    waiter.release()
    holder.close()
    waiter.close()
    assert tries[0] <= 3  # one try, one wait (was ~2,000 in this second, then ~100)
    assert got - released_at[0] < 0.05  # the turn comes as soon as it is free


_BUSY_PROCESS = """
import sys, threading, time
from pathlib import Path
from kontak.db.session import WriteLock
lock = WriteLock(Path(sys.argv[1]))
end = time.monotonic() + float(sys.argv[2])
def writer():
    while time.monotonic() < end:
        assert lock.acquire(timeout=30)
        time.sleep(0.02)
        lock.release()
writers = [threading.Thread(target=writer) for _ in range(2)]
for w in writers:
    w.start()
print("writing", flush=True)
for w in writers:
    w.join()
"""


def test_a_process_waiting_for_the_file_lock_gets_it_between_anothers_writes(
    tmp_path: Path,
) -> None:
    # Another process's two threads write back to back (each holds the turn 20 ms). Trying
    # again every 0.5-10 ms, this one found the lock free only in the microseconds between
    # their turns, and waited for most of them: at 32 concurrent creates on two server
    # processes one process's writes waited behind the other's. Waiting in the kernel, it
    # is woken at the first release.
    import subprocess
    import sys

    from kontak.db.session import WriteLock

    path = tmp_path / "db-writelock"
    busy = subprocess.Popen(
        [sys.executable, "-c", _BUSY_PROCESS, str(path), "2"], stdout=subprocess.PIPE, text=True
    )
    lock = WriteLock(path)
    try:
        assert busy.stdout is not None
        assert busy.stdout.readline() == "writing\n"
        time.sleep(0.1)
        waits = []
        for _ in range(5):
            asked = time.monotonic()
            got = lock.acquire(timeout=1)
            waits.append(time.monotonic() - asked)
            assert got, waits
            lock.release()
            time.sleep(0.03)
    finally:
        busy.communicate(timeout=30)
        lock.close()
    assert busy.returncode == 0
    assert max(waits) < 0.2, waits  # at most a turn or two of the other process's (20 ms)


def test_the_turn_passes_at_commit_before_the_connection_goes_back(tmp_path: Path) -> None:
    # The session's and the pool's bookkeeping after a COMMIT (~0.05 ms a create) was held
    # inside the turn that every writer of every process waits for. Two engines on one
    # file stand for two processes: each has its own lock file handle.
    first = _engine_with_table(tmp_path, "x INTEGER", busy_timeout_s=5)
    second = make_engine(str(first.url), busy_timeout_s=5)
    try:
        with first.connect().execution_options(**{WRITE_OPTION: True}) as conn:
            conn.begin()
            conn.execute(text("INSERT INTO t VALUES (1)"))
            conn.commit()  # the connection is still checked out
            started = time.monotonic()
            with session_scope(make_sessionmaker(second), write=True) as session:
                session.execute(text("INSERT INTO t VALUES (2)"))
            assert time.monotonic() - started < 1  # held to the return: 5 s, the timeout
            conn.begin()  # and the first takes the turn again for its next write
            conn.execute(text("INSERT INTO t VALUES (3)"))
            conn.rollback()
        with second.connect() as conn:
            assert conn.execute(text("SELECT x FROM t ORDER BY x")).scalars().all() == [1, 2]
    finally:
        dispose(first)
        dispose(second)


def test_a_turn_that_comes_after_its_asker_gave_up_is_not_given_back_under_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An asker gives up while its process's waiting thread is blocked in flock. When the
    # lock comes, that thread hands it back; the lock belongs to the open file, so a
    # second asker whose quick try (LOCK_NB on the same file) succeeded meanwhile held
    # nothing once it was handed back, and a third process got in beside it.
    import fcntl

    from kontak.db.session import WriteLock

    real = fcntl.flock

    def deciding_slowly(fd: int, operation: int) -> None:
        real(fd, operation)
        if operation == fcntl.LOCK_EX and threading.current_thread().name == "kontak-write-turn":
            time.sleep(0.3)  # has the lock; decides what to do with it a little later

    monkeypatch.setattr(fcntl, "flock", deciding_slowly)
    path = tmp_path / "db-writelock"
    other, ours, third = WriteLock(path), WriteLock(path), WriteLock(path)  # three processes
    try:
        assert other.acquire(timeout=5)
        assert not ours.acquire(timeout=0.1)  # gives up; its waiting thread stays in flock
        other.release()
        time.sleep(0.1)  # that thread has the lock now, and decides in 0.2 s
        assert ours.acquire(timeout=5)
        try:
            assert not third.acquire(timeout=0.6)  # ours holds the file lock
        finally:
            ours.release()
    finally:
        for lock in (other, ours, third):
            lock.close()
