"""Verification pages: the upload and camera challenge, the queued job, and a case's result.

GET  /verify             the page (document, selfie, liveness challenge; verify.js drives the
                         camera)
POST /verify             multipart: `document`, `selfie`, `frame` (repeated); works without script
                         too (then without liveness frames, which ends in review). The uploads
                         are sealed in the vault and queued (clearance/jobs); the answer points
                         at the job. A full queue: 503 with Retry-After.
GET  /verifications/ID   the job: queued (its position), in progress, or rejected with the
                         reason; refreshes itself, and once the case is stored sends the browser
                         to it (303)
GET  /cases/ID           the result and its reasons (the person's own cases only)
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from clearance.errors import InvalidInput, NotFound
from clearance.identity.models import Case, VerificationMethod
from clearance.identity.service import get_case
from clearance.jobs import service as jobs
from clearance.jobs.models import JobState, Progress
from clearance.jobs.uploads import MAX_FRAMES, Uploads, enqueue_verification, precheck
from clearance.portal.context import Portal

REFRESH_SECONDS = 2  # how often the job page reloads itself while the job is not finished


def wants_json(request: Request) -> bool:
    """Script calls and the phone app's API (`/api/...`) get errors as JSON."""
    accept = request.headers.get("accept", "")
    return "application/json" in accept or request.url.path.startswith(
        f"{request.scope.get('root_path', '')}/api/"
    )


async def _file(form: FormData, field: str, label: str) -> bytes:
    value = form.get(field)
    if not isinstance(value, UploadFile):
        raise InvalidInput(f"{label} is missing")
    data = await value.read()
    if not data:
        raise InvalidInput(f"{label} is empty")
    return data


async def read_uploads(form: FormData) -> Uploads:
    document = await _file(form, "document", "the document photo")
    selfie = await _file(form, "selfie", "the selfie")
    frames = [f for f in form.getlist("frame") if isinstance(f, UploadFile)]
    return Uploads(document, selfie, tuple([await f.read() for f in frames]))


def progress_json(progress: Progress, base: str) -> dict[str, object]:
    job = progress.job
    out: dict[str, object] = {"job": job.id, "state": job.state.value}
    if progress.position is not None:
        out["position"] = progress.position
    if job.state is JobState.DONE and job.case is not None:
        out["location"] = f"{base}/cases/{job.case}"
    if job.state is JobState.REJECTED:
        out["reason"] = job.reason
    return out


class VerifyViews:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal

    async def page(self, request: Request) -> Response:
        await self.portal.require_user(request)
        return self.portal.page(request, "verify.html", max_frames=MAX_FRAMES)

    async def submit(self, request: Request) -> Response:
        p = self.portal
        user = await p.require_user(request)
        form = await p.form(request, max_files=MAX_FRAMES + 2)
        try:
            uploads = await read_uploads(form)
        finally:
            await form.close()  # the spooled temporary files
        precheck(uploads)
        settings = p.settings.jobs
        job_id = await asyncio.to_thread(
            lambda: enqueue_verification(
                p.engine,
                p.vault(),
                uploads,
                user_id=user.id,
                method=VerificationMethod.REMOTE,
                max_attempts=settings.max_attempts,
                max_pending=settings.max_pending,
            )
        )
        base = request.scope.get("root_path", "")
        location = f"{base}/verifications/{job_id}"
        if wants_json(request):
            # verify.js follows `location`; `status` is the job's, no outcome yet.
            return JSONResponse({"location": location, "job": job_id, "status": "queued"})
        return RedirectResponse(location, status_code=303)

    async def job(self, request: Request) -> Response:
        p = self.portal
        user = await p.require_user(request)
        job_id = request.path_params["job_id"]
        progress: Progress = await p.db(lambda c: jobs.progress(c, job_id))
        if progress.job.user_id != user.id:
            raise NotFound(f"no job {job_id}")
        base = request.scope.get("root_path", "")
        if wants_json(request):
            return JSONResponse(progress_json(progress, base))
        job = progress.job
        if job.state is JobState.DONE and job.case is not None:
            return RedirectResponse(f"{base}/cases/{job.case}", status_code=303)
        refresh = None if progress.finished else REFRESH_SECONDS
        return p.page(request, "job.html", progress=progress, job=job, refresh=refresh)

    async def case(self, request: Request) -> Response:
        p = self.portal
        user = await p.require_user(request)
        case_id = request.path_params["case_id"]
        case: Case = await p.db(lambda c: get_case(c, case_id))
        if case.user_id != user.id:
            raise NotFound(f"no identity case {case_id}")
        return p.page(request, "case.html", case=case)
