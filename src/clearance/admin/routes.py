"""The operator API, mounted by the gateway at /admin/api. Every call needs an admin token
(`Authorization: Bearer clr-admin-...`, RFC 6750 §2.1; never a query parameter) with the scope
the route names; every change, and every look at a person's record, is an audit entry naming the
token (`admin-token:<id>`), never the person's email.

GET  /whoami                                      the token's id, name and scopes (any scope)
GET  /models                                      catalog:read
POST /models/{model}/suspend      {"reason"}      catalog:write  the kill switch
POST /models/{model}/resume                       catalog:write
     (upstreams; models update, reclassify, retire: catalog_routes.py)
POST /users/lookup                {"email"}       principals:read  (the email stays out of URLs)
GET  /users/{subject}                             principals:read
POST /users/{subject}/keys/{key}/revoke           principals:write  (a stolen key)
POST /users/{subject}/screening/resolve           screening:write
     (users list, search, suspend, reinstate; orgs; keys; licences: principal_routes.py)
     {"list", "entry_id", "resolution": "false_positive|true_match", "reason"}
GET  /review                                      review:read   cases awaiting review
GET  /review/{case}                               review:read   the case, without its images
POST /review/{case}/decide  {"outcome": "verified|rejected", "note"}   review:write
     (the misuse guard's cases and a person's flags: guard_routes.py)

Errors are `{"error": {"code", "message"}}` with the error's own status; a missing or bad token
is 401 with `WWW-Authenticate: Bearer`, a token without the scope 403 `insufficient_scope`
(RFC 6750 §3.1).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any

import orjson
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clearance.admin import tokens
from clearance.admin.catalog_routes import CatalogRoutes
from clearance.admin.guard_routes import GuardRoutes
from clearance.admin.principal_routes import PrincipalRoutes
from clearance.admin.tokens import AdminToken, Scope
from clearance.audit.entries import admin_action
from clearance.audit.service import AuditLog
from clearance.catalog import service as catalog
from clearance.catalog.classification import Thresholds
from clearance.catalog.models import Model
from clearance.catalog.models import model_json as catalog_model_json
from clearance.config import Settings
from clearance.errors import (
    ClearanceError,
    InsufficientScope,
    InvalidInput,
    InvalidToken,
    NotFound,
    PayloadTooLarge,
)
from clearance.identity import review
from clearance.identity.models import Case, Outcome, verdict_json
from clearance.identity.service import get_case
from clearance.net.responses import error_response
from clearance.principals import service as principals
from clearance.principals.models import user_json
from clearance.screening import hits
from clearance.screening import service as screening
from clearance.screening.settings import thresholds
from clearance.store import reading

MAX_BODY = 64 * 1024
Handler = Callable[[Request, AdminToken], Awaitable[Response]]


class AdminApi:
    def __init__(self, settings: Settings, engine: Engine, audit: AuditLog) -> None:
        self.settings = settings
        self.engine = engine
        self.audit = audit

    # -- plumbing -------------------------------------------------------------------------

    def route(self, path: str, scope: Scope | None, handler: Handler, method: str) -> Route:
        async def endpoint(request: Request) -> Response:
            token = await run_in_threadpool(self.authenticate, request)
            if scope is not None and scope not in token.scopes:
                raise InsufficientScope(f"this token lacks the {scope.value} scope")
            response = await handler(request, token)
            response.headers["cache-control"] = "no-store"  # personal data: never cached
            return response

        return Route(path, endpoint, methods=[method])

    def authenticate(self, request: Request) -> AdminToken:
        header = request.headers.get("authorization", "")
        kind, _, secret = header.partition(" ")
        if kind.lower() != "bearer" or not secret.strip():
            raise InvalidToken("an admin token is required (Authorization: Bearer ...)")
        with reading(self.engine) as conn:
            return tokens.authenticate(conn, secret.strip())

    def record(
        self, token: AdminToken, action: str, target: str, details: dict[str, object], **kw: Any
    ) -> int:
        return self.audit.append(
            admin_action(actor=token.actor, action=action, target=target, details=details, **kw)
        )

    # -- routes ---------------------------------------------------------------------------

    async def whoami(self, _request: Request, token: AdminToken) -> Response:
        return JSONResponse(
            {
                "id": token.id,
                "name": token.name,
                "scopes": sorted(s.value for s in token.scopes),
                "expires_at": token.expires_at.isoformat() if token.expires_at else None,
            }
        )

    async def models(self, _request: Request, _token: AdminToken) -> Response:
        def run() -> list[dict[str, object]]:
            with reading(self.engine) as conn:
                loaded = catalog.load_catalog(conn, Thresholds.configured(self.settings))
                return [model_json(m) for m in loaded.models.values()]

        return JSONResponse({"models": await run_in_threadpool(run)})

    async def suspend(self, request: Request, token: AdminToken) -> Response:
        reason = text_field(await json_body(request), "reason")
        model_id = request.path_params["model"]

        def run() -> dict[str, object]:
            with self.engine.begin() as conn:
                model = catalog.suspend(conn, model_id, reason)
            index = self.record(token, "model.suspend", model.id, {"reason": reason})
            return {**model_json(model), "audit_index": index}

        return JSONResponse(await run_in_threadpool(run))

    async def resume(self, request: Request, token: AdminToken) -> Response:
        model_id = request.path_params["model"]

        def run() -> dict[str, object]:
            with self.engine.begin() as conn:
                model = catalog.resume(conn, model_id)
            index = self.record(token, "model.resume", model.id, {})
            return {**model_json(model), "audit_index": index}

        return JSONResponse(await run_in_threadpool(run))

    async def lookup(self, request: Request, token: AdminToken) -> Response:
        email = text_field(await json_body(request), "email")
        return JSONResponse(await run_in_threadpool(self.user_view, token, email=email))

    async def user(self, request: Request, token: AdminToken) -> Response:
        subject = request.path_params["subject"]
        return JSONResponse(await run_in_threadpool(self.user_view, token, subject=subject))

    def user_view(
        self, token: AdminToken, *, email: str | None = None, subject: str | None = None
    ) -> dict[str, object]:
        with reading(self.engine) as conn:
            if email is not None:
                user = principals.get_user(conn, email)
            else:
                assert subject is not None
                user = principals.get_user_by_subject(conn, subject)
            keys = principals.list_keys(conn, user.id)
            found = hits.for_user(conn, user.id)
        # Looking at a person's record is itself a record (who looked, never what they saw).
        self.record(token, "user.view", "user", {}, subject=user.subject_id)
        return {
            **user_json(user),
            "keys": [
                {
                    "id": k.id,
                    "name": k.name,
                    "hint": k.hint,
                    "created_at": k.created_at.isoformat(),
                    "revoked": k.revoked_at is not None,
                }
                for k in keys
            ],
            "screening_hits": [
                {
                    "list": h.list_name,
                    "entry_id": h.entry_id,
                    "score": h.score,
                    "outcome": h.outcome.value,
                }
                for h in found
            ],
        }

    async def revoke_key(self, request: Request, token: AdminToken) -> Response:
        subject, key_id = request.path_params["subject"], request.path_params["key"]

        def run() -> dict[str, object]:
            with self.engine.begin() as conn:
                user = principals.get_user_by_subject(conn, subject)
                if key_id not in {k.id for k in principals.list_keys(conn, user.id)}:
                    raise NotFound(f"no active key {key_id!r}")
                principals.revoke_key(conn, key_id)
            index = self.record(token, "key.revoke", key_id, {}, subject=user.subject_id)
            return {"key": key_id, "revoked": True, "audit_index": index}

        return JSONResponse(await run_in_threadpool(run))

    async def resolve(self, request: Request, token: AdminToken) -> Response:
        body = await json_body(request)
        list_name, entry_id = text_field(body, "list"), text_field(body, "entry_id")
        reason = text_field(body, "reason")
        try:
            resolution = screening.Resolution(text_field(body, "resolution"))
        except ValueError:
            raise InvalidInput("resolution must be false_positive or true_match") from None
        subject = request.path_params["subject"]

        def run() -> dict[str, object]:
            with reading(self.engine) as conn:
                email = principals.get_user_by_subject(conn, subject).email
            result = screening.resolve(
                self.engine,
                email,
                list_name,
                entry_id,
                resolution,
                reason,
                actor=token.actor,
                thresholds=thresholds(self.settings),
                audit=self.audit,
            )
            return {"subject": subject, "screening": result.status.value}

        return JSONResponse(await run_in_threadpool(run))

    async def review_queue(self, _request: Request, _token: AdminToken) -> Response:
        def run() -> list[dict[str, object]]:
            with reading(self.engine) as conn:
                return [case_summary(c) for c in review.pending(conn)]

        return JSONResponse({"cases": await run_in_threadpool(run)})

    async def review_case(self, request: Request, _token: AdminToken) -> Response:
        case_id = int_param(request, "case")

        def run() -> dict[str, object]:
            with reading(self.engine) as conn:
                case = get_case(conn, case_id)
            return {**case_summary(case), **verdict_json(case)}

        return JSONResponse(await run_in_threadpool(run))

    async def decide(self, request: Request, token: AdminToken) -> Response:
        body = await json_body(request)
        note = text_field(body, "note")
        outcome_text = text_field(body, "outcome")
        if outcome_text not in (Outcome.VERIFIED.value, Outcome.REJECTED.value):
            raise InvalidInput("outcome must be verified or rejected")
        case_id = int_param(request, "case")

        def run() -> dict[str, object]:
            case = review.decide_case(
                self.engine,
                self.audit,
                case_id,
                actor=token.actor,
                outcome=Outcome(outcome_text),
                note=note,
                max_age_days=self.settings.policy.verification_max_age_days,
            )
            return {**case_summary(case), **verdict_json(case)}

        return JSONResponse(await run_in_threadpool(run))


def model_json(m: Model) -> dict[str, object]:
    return catalog_model_json(m)  # the one shape, as `clearance models list --json`


def case_summary(c: Case) -> dict[str, object]:
    return {
        "case": c.id,
        "subject": c.subject,
        "method": c.method,
        "created": c.created_at.astimezone(UTC).isoformat(),
        "decided_by": c.decided_by,
        "audit_index": c.audit_index,
    }


async def json_body(request: Request) -> dict[str, Any]:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise PayloadTooLarge(f"request bodies are limited to {MAX_BODY} bytes")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidInput("the body must be a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidInput("the body must be a JSON object")
    return value


def text_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > 2000:
        raise InvalidInput(f"{name!r} must be a non-empty string of at most 2000 characters")
    return value.strip()


def int_param(request: Request, name: str) -> int:
    value = request.path_params[name]
    if not value.isascii() or not value.isdigit() or len(value) > 9:  # ids are 32-bit
        raise NotFound(f"no such {name}")
    return int(value)


def admin_app(settings: Settings, engine: Engine, audit: AuditLog) -> Starlette:
    api = AdminApi(settings, engine, audit)
    r = api.route
    routes = [
        r("/whoami", None, api.whoami, "GET"),
        r("/models", Scope.CATALOG_READ, api.models, "GET"),
        r("/models/{model}/suspend", Scope.CATALOG_WRITE, api.suspend, "POST"),
        r("/models/{model}/resume", Scope.CATALOG_WRITE, api.resume, "POST"),
        r("/users/lookup", Scope.PRINCIPALS_READ, api.lookup, "POST"),
        r("/users/{subject}", Scope.PRINCIPALS_READ, api.user, "GET"),
        r("/users/{subject}/keys/{key}/revoke", Scope.PRINCIPALS_WRITE, api.revoke_key, "POST"),
        r("/users/{subject}/screening/resolve", Scope.SCREENING_WRITE, api.resolve, "POST"),
        r("/review", Scope.REVIEW_READ, api.review_queue, "GET"),
        r("/review/{case}", Scope.REVIEW_READ, api.review_case, "GET"),
        r("/review/{case}/decide", Scope.REVIEW_WRITE, api.decide, "POST"),
        *CatalogRoutes(api, json_body).routes(),  # upstreams and models: catalog_routes.py
        *PrincipalRoutes(api, json_body).routes(),  # people, orgs, keys, licences
        *GuardRoutes(api, json_body).routes(),  # the misuse guard's review queue
    ]

    async def on_error(_request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):  # routing: unknown path or method
            status, code, detail = exc.status_code, "not_found", str(exc.detail)
            if status == 405:
                code = "method_not_allowed"
        else:
            assert isinstance(exc, ClearanceError)
            status, code, detail = exc.status, exc.code, exc.detail
        headers = {"cache-control": "no-store"}
        if status == 401:
            headers["www-authenticate"] = 'Bearer realm="clearance-admin"'
        elif isinstance(exc, InsufficientScope):
            headers["www-authenticate"] = (
                'Bearer realm="clearance-admin", error="insufficient_scope"'
            )
        return error_response(status, code, detail, headers)

    return Starlette(
        routes=routes, exception_handlers={ClearanceError: on_error, HTTPException: on_error}
    )
