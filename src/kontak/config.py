"""Settings read from ``KONTAK_*`` environment variables, with defaults that work locally."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# PostgreSQL connections kept by all the server processes together, and by one at most
# (anyio runs at most 40 sync routes at a time in a process: kontak.db.session.POOL_SIZE).
SERVER_CONNECTIONS = 80
PROCESS_CONNECTIONS = 40


class Settings(BaseSettings):
    """Every knob of the service; see the README's Configuration table."""

    model_config = SettingsConfigDict(env_prefix="KONTAK_", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="SQLite file and uploaded files.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in data_dir."
    )
    secret_key: str | None = Field(
        default=None,
        description="Signs session cookies; default: a random key kept in data_dir.",
    )
    default_region: str = Field(default="ID", description="Region of new organizations.")
    sqlite_busy_timeout_s: float = 30.0
    sqlite_cache_mb: int = Field(
        default=64,
        description="Page cache of each SQLite connection, in MiB (filled only as pages are read).",
    )
    postgres_pool_size: int | None = Field(
        default=None,
        ge=1,
        description="PostgreSQL connections each server process keeps open for its requests "
        f"(default: {SERVER_CONNECTIONS} shared by the server processes, at most "
        f"{PROCESS_CONNECTIONS} each).",
    )
    max_upload_bytes: int = 200 * 1024 * 1024
    max_rows: int = 1_048_576
    max_columns: int = 1_000
    max_cell_chars: int = 10_000
    max_xlsx_uncompressed_bytes: int = 2 * 1024**3
    parse_memory_limit_mb: int = Field(
        default=4096, description="Address-space cap of the parsing child process (0: none)."
    )
    parse_timeout_s: float = Field(default=900, description="Longest parse of one file.")
    parse_workers: int = Field(
        default_factory=lambda: min(os.cpu_count() or 1, 4),
        description="Processes that check the rows of a large file (default: the cores, up to 4).",
    )
    compiled_parser: bool = Field(
        default=True,
        description="Run the parsing child on the compiled copy of its modules when "
        "`python -m kontak.native` built one for the current source.",
    )
    stream_imports: bool = Field(
        default=True,
        description="Write a big import's rows while the rest of the file is checked (one "
        "transaction, committed only if the whole file is clean); off: after. On SQLite "
        "other writers then wait from the first rows checked, not from the last.",
    )
    job_stale_after_s: float = Field(
        default=120, description="A processing job without heartbeat this long is failed."
    )
    run_worker: bool = Field(default=True, description="Run the import worker in `serve`.")
    web_processes: int = Field(
        default_factory=lambda: min(os.cpu_count() or 1, 4),
        ge=1,
        description="Server processes of `serve` (default: the cores, up to 4; two on two "
        "cores serve ~1.8x the creates of one; each runs its own import worker).",
    )
    api_threads: int = Field(
        default=2,
        ge=1,
        description="Worker threads of each server process for the JSON API's reads, and as "
        "many for its writes; more requests wait their turn in order of arrival (at 32 "
        "concurrent creates anyio's 40 threads, the default before, had ~1.5-2x the p99).",
    )
    access_log: bool = Field(
        default=False,
        description="Log every request of `serve` (one line on stderr each; ~7% of a "
        "request's CPU). Errors and the import worker are logged either way.",
    )

    @cached_property
    def resolved_database_url(self) -> str:
        """The database URL in force: the explicit one, or SQLite under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'kontak.db').resolve()}"

    @property
    def postgres_pool(self) -> int:
        """The PostgreSQL connections a server process keeps: the configured number, or
        its share of SERVER_CONNECTIONS (PostgreSQL's default ``max_connections`` is 100;
        what is left serves imports and the CLI)."""
        if self.postgres_pool_size:
            return self.postgres_pool_size
        return max(1, min(PROCESS_CONNECTIONS, SERVER_CONNECTIONS // self.web_processes))

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


def get_settings() -> Settings:
    """Fresh settings from the environment (cheap; callers keep their own copy)."""
    return Settings()
