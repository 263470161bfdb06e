"""Verification pages: the upload and camera challenge, and a case's result.

GET  /verify       the page (document, selfie, liveness challenge; verify.js drives the camera)
POST /verify       multipart: `document`, `selfie`, `frame` (repeated); works without script
                   too (then without liveness frames, which ends in review)
GET  /cases/ID     the result and its reasons (the person's own cases only)
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from clearance.errors import InvalidInput, NotFound
from clearance.identity.models import Case
from clearance.identity.service import get_case
from clearance.portal.context import Portal
from clearance.portal.verifier import MAX_FRAMES, Uploads


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


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
        async with p.verifications:
            case = await asyncio.to_thread(p.verifier.verify, user.id, uploads)
        location = f"{request.scope.get('root_path', '')}/cases/{case.id}"
        if wants_json(request):
            return JSONResponse({"location": location, "status": case.status.value})
        return RedirectResponse(location, status_code=303)

    async def case(self, request: Request) -> Response:
        p = self.portal
        user = await p.require_user(request)
        case_id = request.path_params["case_id"]
        case: Case = await p.db(lambda c: get_case(c, case_id))
        if case.user_id != user.id:
            raise NotFound(f"no identity case {case_id}")
        return p.page(request, "case.html", case=case)
