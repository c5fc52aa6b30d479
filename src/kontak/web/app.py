"""The ASGI application: ``create_app(settings)`` wires the database, routers and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from kontak import __version__
from kontak.config import Settings, get_settings
from kontak.db import search_index
from kontak.db.session import Checkpointer, dispose, make_engine, make_sessionmaker
from kontak.import_job.worker import Worker
from kontak.web import errors
from kontak.web import session as web_session
from kontak.web.api import contacts, custom_fields, health, imports, tags
from kontak.web.deps import Lanes
from kontak.web.pages import auth
from kontak.web.pages import contacts as contact_pages
from kontak.web.pages import imports as import_pages
from kontak.web.pages import settings as settings_pages

STATIC = Path(__file__).parent / "static"

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None) -> FastAPI:
    """A Kontak app bound to the database of ``settings`` (default: the environment's)."""
    settings = settings or get_settings()
    engine = make_engine(
        settings.resolved_database_url,
        busy_timeout_s=settings.sqlite_busy_timeout_s,
        cache_mb=settings.sqlite_cache_mb,
        background_checkpoints=settings.is_sqlite,
        **({} if settings.is_sqlite else {"pool_size": settings.postgres_pool}),
    )

    sessions = make_sessionmaker(engine)
    worker = Worker(settings, sessions) if settings.run_worker else None
    checkpointer = (
        Checkpointer(engine, chores=[lambda: search_index.catch_up(engine)])
        if settings.is_sqlite
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if checkpointer is not None:
            checkpointer.start()
        if worker is not None:
            worker.start()
        yield
        app.state.lanes.close()
        if worker is not None:
            worker.stop()
        if checkpointer is not None:
            checkpointer.stop()
        dispose(engine)

    app = FastAPI(
        lifespan=lifespan,
        title="Kontak",
        version=__version__,
        description="Contacts of an omnichannel customer-service team: API, import, export.",
    )
    app.state.settings = settings
    app.state.secret_key = web_session.secret_key(settings)
    app.state.engine = engine
    app.state.sessionmaker = sessions
    app.state.worker = worker
    app.state.lanes = Lanes(settings.api_threads, wait_s=settings.sqlite_busy_timeout_s)
    errors.install(app)

    api = APIRouter(prefix=API_PREFIX)
    for module in (health, contacts, tags, custom_fields, imports):
        api.include_router(module.router)
    app.include_router(api)
    for page in (auth, contact_pages, import_pages, settings_pages):
        app.include_router(page.router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app
