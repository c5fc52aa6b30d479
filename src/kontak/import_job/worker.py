"""The embedded import worker: a thread that claims queued jobs one at a time.

Jobs are rows, so separate worker processes can share the queue (PostgreSQL claims with
``FOR UPDATE SKIP LOCKED``); the web process runs one of these unless told not to.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from kontak.config import Settings
from kontak.db.session import session_scope
from kontak.import_job import repository
from kontak.import_job.runner import recover, run_job

log = logging.getLogger("kontak.import")
POLL_S = 1.0


class Worker:
    """Start with :meth:`start`; :meth:`wake` after queueing a job; :meth:`stop` to end."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self.settings = settings
        self.sessions = sessions
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kontak-import-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        next_recovery = 0.0
        while not self._stop.is_set():
            try:
                if next_recovery <= 0:
                    recovered = recover(
                        self.sessions,
                        stale_after_s=self.settings.job_stale_after_s,
                        data_dir=self.settings.data_dir,
                    )
                    if recovered:
                        log.warning("marked %d interrupted import(s) failed", recovered)
                    next_recovery = 30.0
                job_id = self._next()
            except Exception:
                log.exception("import worker could not poll the queue")
                job_id = None
            if job_id is None:
                self._wake.wait(POLL_S)
                self._wake.clear()
                next_recovery -= POLL_S
                continue
            run_job(self.settings, self.sessions, job_id)

    def _next(self) -> str | None:
        with session_scope(self.sessions, write=True) as session:
            return repository.next_queued(session)
