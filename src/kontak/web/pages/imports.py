"""Import history and one import's page (its duplicates, invalid rows and report)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from kontak.account.roles import Permission
from kontak.import_job import service
from kontak.web.deps import SessionDep
from kontak.web.pages.common import PROBLEMS_SHOWN, UserDep, page_locale, render, require

router = APIRouter(include_in_schema=False)


@router.get("/imports", response_class=HTMLResponse)
def history(
    request: Request, session: SessionDep, principal: UserDep, cursor: str | None = None
) -> Response:
    require(principal, Permission.IMPORT)
    page = service.list_jobs(
        session,
        principal.organization,
        cursor=cursor,
        locale=page_locale(request),
        data_dir=request.app.state.settings.data_dir,
    )
    return render(request, "imports/history.html", {"page": page})


@router.get("/imports/{job_id}", response_class=HTMLResponse)
def job_page(job_id: str, request: Request, session: SessionDep, principal: UserDep) -> Response:
    require(principal, Permission.IMPORT)
    settings = request.app.state.settings
    org = principal.organization
    locale = page_locale(request)
    job = service.get(session, org, job_id, locale=locale, data_dir=settings.data_dir)
    # One more than shown of each: the page says when the report holds more.
    more = PROBLEMS_SHOWN + 1
    return render(
        request,
        "imports/job.html",
        {
            "job": job,
            "duplicates": service.duplicates(session, settings, org, job_id, limit=more),
            "errors": service.errors(session, settings, org, job_id, locale=locale, limit=more),
        },
    )
