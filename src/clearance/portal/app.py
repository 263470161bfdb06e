"""The enrolment portal: server-rendered pages mounted by the gateway at /portal.

    Mount("/portal", app=portal_app(settings, engine, audit, state))

Everything passes through `security.PortalGuard` (headers, body limit, browser nonce); every
POST checks its CSRF token (`Portal.form`); errors render as a page (or JSON for script calls)
with the error's own status.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from clearance.audit.service import AuditLog
from clearance.config import Settings
from clearance.errors import ClearanceError
from clearance.policy.state import DecisionState
from clearance.portal.account_views import AccountViews
from clearance.portal.chip_views import ChipApi
from clearance.portal.cip_views import CipViews
from clearance.portal.context import Portal, SignInRequired
from clearance.portal.mailer import Mailer, mailer_for
from clearance.portal.org_views import OrgViews
from clearance.portal.review_views import ReviewViews
from clearance.portal.security import PortalGuard
from clearance.portal.signin_views import SignInViews
from clearance.portal.sso import provider_for
from clearance.portal.sso.views import SsoViews
from clearance.portal.verify_views import VerifyViews, wants_json

if TYPE_CHECKING:
    from clearance.portal.sso.provider import OpenIdProvider

STATIC = Path(__file__).parent / "static"


def csrf_key(settings: Settings) -> bytes:
    """A key for CSRF tokens, derived from the audit signing key (no new secret to manage)."""
    material = settings.audit.signing_key_file.read_bytes()
    return hashlib.sha256(b"clearance/portal-csrf\0" + material).digest()


def build(portal: Portal, sso_provider: OpenIdProvider | None = None) -> Starlette:
    signin, account, verify = SignInViews(portal), AccountViews(portal), VerifyViews(portal)
    sso = SsoViews(portal, sso_provider)  # its button shows on the sign-in page when configured
    chip = ChipApi(portal)  # the phone app's chip upload (docs/identity.md)
    reviews, org, cip = ReviewViews(portal), OrgViews(portal), CipViews(portal)

    async def on_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):  # routing: unknown path or method
            status = exc.status_code
            exc = ClearanceError(str(exc.detail))
            exc.status = status
        assert isinstance(exc, ClearanceError)
        if isinstance(exc, SignInRequired) and not wants_json(request):
            return RedirectResponse(request.scope.get("root_path", "") + "/signin", 303)
        response: Response
        if wants_json(request):
            body = {"error": exc.detail, "code": exc.code}
            response = JSONResponse(body, status_code=exc.status)
        else:
            response = portal.page(request, "error.html", status=exc.status, error=exc)
        retry_after = getattr(exc, "retry_after", None)  # RateLimited, QueueFull
        if isinstance(retry_after, int):
            response.headers["retry-after"] = str(retry_after)
        return response

    return Starlette(
        routes=[
            Route("/", account.status),
            Route("/signin", signin.form, methods=["GET"]),
            Route("/signin", signin.request_link, methods=["POST"]),
            Route("/signin/link/{token}", signin.link_page, methods=["GET"]),
            Route("/signin/link/{token}", signin.confirm, methods=["POST"]),
            Route("/signout", signin.signout, methods=["POST"]),
            Route("/signin/sso", sso.start, methods=["GET"]),
            Route("/signin/sso/callback", sso.callback, methods=["GET"]),
            Route("/verify", verify.page, methods=["GET"]),
            Route("/verify", verify.submit, methods=["POST"]),
            Route("/verifications/{job_id:int}", verify.job),
            Route("/api/chip", chip.describe, methods=["GET"]),
            Route("/api/chip", chip.submit, methods=["POST"]),
            Route("/cases/{case_id:int}", verify.case),
            Route("/keys", account.keys, methods=["GET"]),
            Route("/keys", account.create, methods=["POST"]),
            Route("/keys/{key_id}/revoke", account.revoke, methods=["POST"]),
            Route("/org", org.page, methods=["GET"]),
            Route("/org", org.update, methods=["POST"]),
            Route("/org/owners", org.add_owner, methods=["POST"]),
            Route("/org/owners/{owner_id:int}/remove", org.remove_owner, methods=["POST"]),
            Route("/org/owners/import", org.import_file, methods=["POST"]),
            Route("/cip", cip.page, methods=["GET"]),
            Route("/cip", cip.submit, methods=["POST"]),
            Route("/review/{case_id:int}/cip", cip.review, methods=["POST"]),
            Route("/review", reviews.queue, methods=["GET"]),
            Route("/review/{case_id:int}", reviews.case, methods=["GET"]),
            Route("/review/{case_id:int}/evidence/{position:int}", reviews.evidence),
            Route("/review/{case_id:int}/decide", reviews.decide, methods=["POST"]),
            Route("/review/guard/{case_id:int}", reviews.guard_case, methods=["GET"]),
            Route("/review/guard/{case_id:int}/decide", reviews.guard_decide, methods=["POST"]),
            Mount("/static", app=StaticFiles(directory=STATIC)),
        ],
        exception_handlers={ClearanceError: on_error, HTTPException: on_error},
    )


def portal_app(
    settings: Settings,
    engine: Engine,
    audit: AuditLog,
    state: DecisionState,
    *,
    mailer: Mailer | None = None,
) -> ASGIApp:
    portal = Portal(
        settings, engine, audit, state, mailer or mailer_for(settings.portal), csrf_key(settings)
    )
    provider = provider_for(settings, os.environ)
    return PortalGuard(build(portal, provider), max_body=settings.portal.max_upload_bytes)
