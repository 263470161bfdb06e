"""Who holds which operator role, for admins.

GET  /operators           every operator account and its roles                      admin
POST /operators/grant     `email`, `role`, `reason`                                 admin
POST /operators/revoke    `subject`, `role`, `reason`: the last admin is refused (409)   admin

The same `portal.operators` functions as `clearance users operator grant|revoke`, so the same
`operator.grant` / `operator.revoke` entries, here with the reason and the admin's pseudonym.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clearance.errors import InvalidInput, NotFound
from clearance.portal import operators
from clearance.portal.console.context import Console, FieldError, done_params, reason, text
from clearance.portal.signin_views import normalise_email
from clearance.principals import service as principals


class OperatorViews:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def page(self, request: Request) -> Response:
        await self.console.require(request, operators.ADMIN)
        rows = await self.console.portal.db(operators.list_operators)
        index, action = done_params(request)
        return self.console.page(
            request,
            "operators.html",
            rows=rows,
            roles=sorted(operators.ROLES),
            done=index,
            action=action,
        )

    async def grant(self, request: Request) -> Response:
        signed = await self.console.require(request, operators.ADMIN)
        form = await self.console.form(request)
        role, why = _role(text(form, "role", limit=16)), reason(form)
        try:
            email = normalise_email(form.get("email"))
        except InvalidInput:
            raise FieldError("email", "enter a valid email address") from None
        portal = self.console.portal
        try:
            user = await portal.db(lambda c: principals.get_user(c, email))
        except NotFound:
            raise FieldError(
                "email", "no account has this address (it signs in once first)"
            ) from None
        index = await asyncio.to_thread(
            operators.grant,
            portal.engine,
            portal.audit,
            user.id,
            role,
            actor=signed.actor,
            reason=why,
        )
        return self._back(request, index, "grant")

    async def revoke(self, request: Request) -> Response:
        signed = await self.console.require(request, operators.ADMIN)
        form = await self.console.form(request)
        role, why = _role(text(form, "role", limit=16)), reason(form)
        subject = text(form, "subject", limit=40)
        portal = self.console.portal
        user = await portal.db(lambda c: principals.get_user_by_subject(c, subject))
        index = await asyncio.to_thread(
            operators.revoke,
            portal.engine,
            portal.audit,
            user.id,
            role,
            actor=signed.actor,
            reason=why,
        )
        return self._back(request, index, "revoke")

    def _back(self, request: Request, index: int | None, action: str) -> Response:
        root = request.scope.get("root_path", "")
        done = f"?done={index}&action={action}" if index is not None else ""
        return RedirectResponse(f"{root}/operators{done}", status_code=303)


def _role(value: str) -> str:
    if value not in operators.ROLES:
        raise FieldError("role", f"one of {', '.join(sorted(operators.ROLES))}")
    return value
