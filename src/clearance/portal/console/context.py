"""`Console`: what every console view needs, on top of the portal's `Portal` (the same sign-in,
session cookie, CSRF tokens and security headers): the signed-in operator with their roles,
read from the database on every request, the console's templates, and the audit record of a
change made under the operator's pseudonym.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from clearance.audit.entries import admin_action
from clearance.catalog.actions import Record
from clearance.errors import InvalidInput, PermissionDenied
from clearance.portal import operators
from clearance.portal.context import Portal
from clearance.portal.security import CSRF_FIELD
from clearance.principals.models import User

TEMPLATES = Path(__file__).parent / "templates"
_NUMBER = re.compile(r"[0-9]{1,12}")
ACTIONS = (
    *("suspend", "resume", "reclassify", "reinstate", "grant", "revoke", "clear", "confirm"),
    *("verified", "rejected", "cleared", "confirmed", "create", "revoke_org"),
    *("update", "retire", "expire", "renew", "scope", "remove", "evidence", "erase", "add"),
)
MAX_REASON = 2000


class FieldError(InvalidInput):
    """A form value the console refuses, naming the field (shown beside the message)."""

    code = "invalid_field"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field


@dataclass(frozen=True, slots=True)
class Signed:
    """The operator behind a request and every role their held ones grant."""

    user: User
    roles: frozenset[str]

    @property
    def actor(self) -> str:
        """The operator by pseudonym (no email in the audit log), as the review pages write."""
        return f"portal:{self.user.subject_id}"

    def can(self, role: str) -> bool:
        return role in self.roles


class Console:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
        self.templates = Jinja2Templates(env=env)

    async def require(self, request: Request, role: str) -> Signed:
        """The signed-in operator if they hold `role` (or one implying it); else 401 (sign in) or
        403. Checked on every request, before anything is looked up (OWASP ASVS 5.0 V8.2)."""
        user = await self.portal.require_user(request)
        held = await self.portal.db(lambda c: operators.roles_of(c, user.id))
        roles = operators.effective(held)
        if role not in roles:
            raise PermissionDenied(f"this needs the {role} role")
        signed = Signed(user, roles)
        request.state.signed = signed
        return signed

    def page(self, request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        context = {
            "base": root,
            "portal": root.removesuffix("/console") + "/portal",
            "csrf": self.portal.csrf.token(request),
            "csrf_field": CSRF_FIELD,
            "me": getattr(request.state, "signed", None),
            **values,
        }
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    async def form(self, request: Request) -> FormData:
        """The POSTed form once its CSRF token and origin have been checked (Portal.form)."""
        return await self.portal.form(request)

    async def record(
        self, signed: Signed, action: str, target: str, details: dict[str, object], **kw: Any
    ) -> int:
        """Append the change's entry (after its transaction committed); its index, durable."""
        entry = admin_action(
            actor=signed.actor, action=action, target=target, details=details, **kw
        )
        return await self.portal.audit.append_async(entry)

    def recorder(self, signed: Signed, reason: str | None = None) -> Record:
        """`catalog.actions.Record` for a worker thread: a blocking append (thread-safe). With
        `reason`, the entry's details carry it (where the CLI's entry has none, the console
        still asks for one)."""

        def record(action: str, target: str, details: dict[str, object]) -> int:
            if reason is not None:
                details = {**details, "reason": reason}
            entry = admin_action(actor=signed.actor, action=action, target=target, details=details)
            return self.portal.audit.append(entry)

        return record


def text(form: FormData, field: str, *, required: bool = True, limit: int = MAX_REASON) -> str:
    value = form.get(field)
    if value is not None and not isinstance(value, str):
        raise FieldError(field, "must be text")
    value = (value or "").strip()
    if required and not value:
        raise FieldError(field, "is required")
    if len(value) > limit:
        raise FieldError(field, f"is at most {limit} characters")
    return value


def reason(form: FormData) -> str:
    """Every change asks for a reason: it goes into the audit entry."""
    return text(form, "reason")


def done_params(request: Request) -> tuple[int | None, str | None]:
    """The `?done=INDEX&action=VERB` a change redirects with: the audit entry it wrote."""
    index = request.query_params.get("done", "")
    action = request.query_params.get("action", "")
    return (
        int(index) if _NUMBER.fullmatch(index) else None,
        action if action in ACTIONS else None,
    )
