"""The operator console: server-rendered pages for operators, mounted by the gateway at /console.

    Mount("/console", app=console_app(settings, engine, audit, state))

It is the portal's machinery with the console's pages: the same sign-in (the portal's emailed
link; the session cookie is `__Host-` with Path=/, so it is sent here too), CSRF tokens, security
headers and body limit (`PortalGuard`). A signed-out visitor is sent to the portal's sign-in.
Every route checks the operator's role on each request (context.py); every change asks for a
reason and answers with the audit entry's index.

GET /             the dashboard                                                   viewer
/models...        the catalog and the kill switch (model_views.py)                viewer / operator
/thresholds       a threshold change previewed: the models it would reclassify       viewer
/upstreams...     where models are served from, changed or removed (upstream_views.py)
                                                                                  viewer / operator
/people...        people: search, one record, suspension (people_views.py)        viewer / operator
/orgs, /licences  organisations; licences, revoked, expired, renewed (directory_views.py)
                                                                                  viewer / operator
/orgs/{id}...     one organisation: KYB, screening, owners, admins, members, changed
                  (org_views.py, owner_views.py)                                  viewer / operator
/screening...     people's and organisations' screening hits with their evidence, decided
                  (screening_views.py)                                            viewer / operator
/reviews          the identity review queue; cases open in the portal's review view reviewer
/audit            the audit explorer, each entry with its inclusion proof           viewer
/keys, /jobs      API keys, scoped or revoked one by one, an org's all as a job (key_views.py)
                                                                                  viewer / operator
/tokens...        admin tokens of the operator API (token_views.py)               admin
/operators...     who holds which role (operator_views.py)                        admin
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from clearance.audit.service import AuditLog
from clearance.config import Settings
from clearance.errors import ClearanceError
from clearance.policy.state import DecisionState
from clearance.portal.app import csrf_key
from clearance.portal.console.audit_views import AuditViews
from clearance.portal.console.context import Console, FieldError
from clearance.portal.console.dashboard import DayCounter, queues
from clearance.portal.console.directory_views import DirectoryViews
from clearance.portal.console.key_views import KeyViews
from clearance.portal.console.model_views import ModelViews
from clearance.portal.console.operator_views import OperatorViews
from clearance.portal.console.org_views import OrgViews
from clearance.portal.console.owner_views import OwnerViews
from clearance.portal.console.people_views import PeopleViews
from clearance.portal.console.review_views import ReviewQueueViews
from clearance.portal.console.screening_views import ScreeningViews
from clearance.portal.console.threshold_views import ThresholdViews
from clearance.portal.console.token_views import TokenViews
from clearance.portal.console.upstream_views import UpstreamViews
from clearance.portal.context import Portal, SignInRequired
from clearance.portal.mailer import mailer_for
from clearance.portal.operators import VIEWER
from clearance.portal.security import PortalGuard
from clearance.portal.verify_views import wants_json


class DashboardViews:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.counter = DayCounter(console.portal.engine)

    async def page(self, request: Request) -> Response:
        await self.console.require(request, VIEWER)
        decisions = await asyncio.to_thread(self.counter.count, datetime.now(UTC))
        waiting = await self.console.portal.db(queues)
        return self.console.page(request, "dashboard.html", decisions=decisions, queues=waiting)


def build(console: Console) -> Starlette:
    dashboard, models = DashboardViews(console), ModelViews(console)
    people, admins = PeopleViews(console), OperatorViews(console)
    directory, screening = DirectoryViews(console), ScreeningViews(console)
    reviews, audit = ReviewQueueViews(console), AuditViews(console)
    keys, admin_tokens = KeyViews(console), TokenViews(console)
    one_org, upstreams = OrgViews(console), UpstreamViews(console)
    thresholds, org_owners = ThresholdViews(console), OwnerViews(console)

    async def on_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):  # routing: unknown path or method
            status = exc.status_code
            exc = ClearanceError(str(exc.detail))
            exc.status = status
        assert isinstance(exc, ClearanceError)
        if isinstance(exc, SignInRequired) and not wants_json(request):
            root = request.scope.get("root_path", "").removesuffix("/console")
            return RedirectResponse(f"{root}/portal/signin", 303)
        if wants_json(request):
            return JSONResponse({"error": exc.detail, "code": exc.code}, status_code=exc.status)
        field = exc.field if isinstance(exc, FieldError) else None
        return console.page(request, "error.html", status=exc.status, error=exc, field=field)

    return Starlette(
        routes=[
            Route("/", dashboard.page),
            Route("/models", models.catalog),
            Route("/models/{model}", models.model),
            Route("/models/{model}/suspend", models.suspend, methods=["POST"]),
            Route("/models/{model}/resume", models.resume, methods=["POST"]),
            Route("/models/{model}/reclassify", models.reclassify, methods=["POST"]),
            Route("/models/{model}/update", models.update, methods=["POST"]),
            Route("/models/{model}/retire", models.retire, methods=["POST"]),
            Route("/models/{model}/evidence", models.evidence, methods=["POST"]),
            Route("/thresholds", thresholds.page),
            Route("/upstreams", upstreams.page),
            Route("/upstreams/{name:path}/update", upstreams.update, methods=["POST"]),
            Route("/upstreams/{name:path}/remove", upstreams.remove, methods=["POST"]),
            Route("/people", people.search),
            Route("/people/{subject}", people.person),
            Route("/people/{subject}/suspend", people.suspend, methods=["POST"]),
            Route("/people/{subject}/reinstate", people.reinstate, methods=["POST"]),
            Route("/people/{subject}/erase", people.erase, methods=["POST"]),
            Route("/orgs", directory.orgs),
            Route("/orgs/{org:int}", one_org.org),
            Route("/orgs/{org:int}/update", one_org.update, methods=["POST"]),
            Route("/orgs/{org:int}/owners/add", org_owners.add_owner, methods=["POST"]),
            Route(
                "/orgs/{org:int}/owners/{owner:int}/remove",
                org_owners.remove_owner,
                methods=["POST"],
            ),
            Route("/orgs/{org:int}/admins/grant", org_owners.grant_admin, methods=["POST"]),
            Route("/orgs/{org:int}/admins/revoke", org_owners.revoke_admin, methods=["POST"]),
            Route("/licences", directory.licences),
            Route("/licences/{licence:int}/revoke", directory.revoke, methods=["POST"]),
            Route("/licences/{licence:int}/expire", directory.expire, methods=["POST"]),
            Route("/licences/{licence:int}/renew", directory.renew, methods=["POST"]),
            Route("/screening", screening.page),
            Route("/screening/decide", screening.decide, methods=["POST"]),
            Route("/screening/decide-org", screening.decide_org, methods=["POST"]),
            Route("/reviews", reviews.page),
            Route("/audit", audit.page),
            Route("/keys", keys.page),
            Route("/keys/revoke-org", keys.revoke_org, methods=["POST"]),
            Route("/keys/{key}/revoke", keys.revoke, methods=["POST"]),
            Route("/keys/{key}/scope", keys.scope, methods=["POST"]),
            Route("/jobs/{job:int}", keys.job),
            Route("/tokens", admin_tokens.page, methods=["GET"]),
            Route("/tokens", admin_tokens.create, methods=["POST"]),
            Route("/tokens/{token}/revoke", admin_tokens.revoke, methods=["POST"]),
            Route("/operators", admins.page),
            Route("/operators/grant", admins.grant, methods=["POST"]),
            Route("/operators/revoke", admins.revoke, methods=["POST"]),
        ],
        exception_handlers={ClearanceError: on_error, HTTPException: on_error},
    )


def console_app(
    settings: Settings, engine: Engine, audit: AuditLog, state: DecisionState
) -> ASGIApp:
    portal = Portal(settings, engine, audit, state, mailer_for(settings.portal), csrf_key(settings))
    return PortalGuard(build(Console(portal)), max_body=64 * 1024)
