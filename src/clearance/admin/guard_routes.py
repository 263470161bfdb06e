"""The misuse guard's review queue in the operator API (mounted at /admin/api), answered with
`clearance guard ... --json`'s shapes (guard/review.py). People are named by pseudonym in URLs.

GET  /guard/cases?status                 review:read   the queue, pending first (no excerpts)
GET  /guard/cases/{case}                 review:write  open a case: its flags and excerpts,
                                                       decrypted after the audited view
POST /guard/cases/{case}/clear    {"reason"}   review:write  lift the hold, clear the flags
POST /guard/cases/{case}/confirm  {"reason"}   review:write  keep controlled models refused
GET  /users/{subject}/guard-flags        principals:read  a person's flags (audited; no excerpt)

Opening a case needs review:write, not review:read: review:read never shows evidence (as for
the identity queue's images), and the excerpts are evidence.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clearance.admin.tokens import AdminToken, Scope
from clearance.errors import ConfigError, InvalidInput, NotFound
from clearance.guard import review
from clearance.guard.review import Decision
from clearance.identity.vault import EvidenceVault
from clearance.principals import service as principals
from clearance.store import reading

if TYPE_CHECKING:
    from clearance.admin.routes import AdminApi

BodyReader = Callable[[Request], Awaitable[dict[str, Any]]]


def _case_id(request: Request) -> int:
    value = request.path_params["case"]
    if not value.isascii() or not value.isdigit() or len(value) > 9:  # ids are 32-bit
        raise NotFound("no such case")
    return int(value)


def _reason(body: dict[str, Any]) -> str:
    value = body.get("reason")
    if not isinstance(value, str) or not value.strip() or len(value) > review.MAX_REASON:
        raise InvalidInput("'reason' must be a non-empty string of at most 2000 characters")
    return value.strip()


class GuardRoutes:
    def __init__(self, api: AdminApi, read_body: BodyReader) -> None:
        self.api = api
        self.read_body = read_body
        self._vault: EvidenceVault | None = None

    def routes(self) -> list[Route]:
        r = self.api.route
        return [
            r("/guard/cases", Scope.REVIEW_READ, self.cases, "GET"),
            r("/guard/cases/{case}", Scope.REVIEW_WRITE, self.case, "GET"),
            r("/guard/cases/{case}/clear", Scope.REVIEW_WRITE, self.clear, "POST"),
            r("/guard/cases/{case}/confirm", Scope.REVIEW_WRITE, self.confirm, "POST"),
            r("/users/{subject}/guard-flags", Scope.PRINCIPALS_READ, self.flags, "GET"),
        ]

    def vault(self) -> EvidenceVault | None:
        # Opened on first use: an instance without the identity master key still lists cases.
        if self._vault is None:
            try:
                self._vault = EvidenceVault.open(self.api.settings.identity)
            except ConfigError:
                return None
        return self._vault

    async def cases(self, request: Request, _token: AdminToken) -> Response:
        unknown = set(request.query_params) - {"status"}
        if unknown:
            raise InvalidInput(f"unknown query parameter {sorted(unknown)[0]!r}")
        status = request.query_params.get("status")
        if status is not None and status not in review.STATUSES:
            raise InvalidInput("status must be pending, cleared or confirmed")

        def run() -> dict[str, object]:
            with reading(self.api.engine) as conn:
                found = review.list_cases(conn, status)
            return {"cases": review.cases_json(found)}

        return JSONResponse(await run_in_threadpool(run))

    async def case(self, request: Request, token: AdminToken) -> Response:
        case_id = _case_id(request)

        def run() -> dict[str, object]:
            opened = review.open_case(
                self.api.engine, self.vault(), self.api.audit, case_id, actor=token.actor
            )
            return review.opened_json(opened)

        return JSONResponse(await run_in_threadpool(run))

    async def clear(self, request: Request, token: AdminToken) -> Response:
        return await self._decide(request, token, "cleared")

    async def confirm(self, request: Request, token: AdminToken) -> Response:
        return await self._decide(request, token, "confirmed")

    async def _decide(self, request: Request, token: AdminToken, outcome: Decision) -> Response:
        reason = _reason(await self.read_body(request))
        case_id = _case_id(request)

        def run() -> dict[str, object]:
            decided, index = review.decide(
                self.api.engine,
                self.api.audit,
                case_id,
                actor=token.actor,
                outcome=outcome,
                reason=reason,
            )
            return {**review.case_json(decided), "audit_index": index}

        return JSONResponse(await run_in_threadpool(run))

    async def flags(self, request: Request, token: AdminToken) -> Response:
        subject = request.path_params["subject"]

        def run() -> dict[str, object]:
            with reading(self.api.engine) as conn:
                user = principals.get_user_by_subject(conn, subject)
                found = review.flags_for(conn, user.id)
            # A look at a person's record: who looked, never what they saw.
            self.api.record(
                token, "usage.flags.view", "user", {"flags": len(found)}, subject=user.subject_id
            )
            return {
                "email": user.email,
                "subject": user.subject_id,
                "usage_hold": user.usage_hold,
                "flags": [review.flag_json(f) for f in found],
            }

        return JSONResponse(await run_in_threadpool(run))
