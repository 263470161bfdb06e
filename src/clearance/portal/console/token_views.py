"""Admin tokens in the console: the bearer tokens of the operator API (/admin/api).

GET  /tokens               every token, active or not: id, name, scopes, made by, expiry,
                           state (never a secret)                                       admin
POST /tokens               `name`, `scope` (one or more), `days` (1 to 365), `reason`: a new
                           token, its secret shown once on the page that answers        admin
POST /tokens/{id}/revoke   `reason`: the token stops working at once, on every worker   admin

The tokens are `principals.admin_tokens`' (as `clearance admin tokens create|list|revoke` make
them): 256 random bits, only their SHA-256 stored. The secret is in the one answer to the POST
that made it (no redirect: a URL or a reloadable page would hold it), with `Cache-Control:
no-store` as every console page. The entries are the CLI's (`admin_token.create`,
`admin_token.revoke`) with the reason and the operator's pseudonym as actor and as the token's
`created_by` (so a deprovisioned operator's tokens can be found and ended). A token that was
revoked since the page was rendered is 409.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clearance.errors import Conflict, InvalidInput, NotFound
from clearance.portal.console.context import Console, FieldError, done_params, reason, text
from clearance.portal.operators import ADMIN
from clearance.principals import admin_tokens as tokens
from clearance.principals.admin_tokens import AdminToken, Scope

MAX_DAYS = 365


class TokenViews:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def _page(self, request: Request, status: int = 200, **values: object) -> Response:
        found = await self.console.portal.db(tokens.list_all)
        index, action = done_params(request)
        values.setdefault("done", index)
        values.setdefault("action", action)
        return self.console.page(
            request,
            "tokens.html",
            status=status,
            found=sorted(found, key=lambda t: t.created_at, reverse=True),
            scopes=list(Scope),
            max_days=MAX_DAYS,
            **values,
        )

    async def page(self, request: Request) -> Response:
        await self.console.require(request, ADMIN)
        return await self._page(request)

    async def create(self, request: Request) -> Response:
        signed = await self.console.require(request, ADMIN)
        form = await self.console.form(request)
        name = text(form, "name", limit=100)
        chosen = [s for s in form.getlist("scope") if isinstance(s, str)]
        try:
            scopes = tokens.parse_scopes(chosen)
        except InvalidInput as exc:
            raise FieldError("scope", exc.detail) from exc
        days_text = text(form, "days", limit=3)
        if not (days_text.isascii() and days_text.isdigit() and 1 <= int(days_text) <= MAX_DAYS):
            raise FieldError("days", f"a whole number of days from 1 to {MAX_DAYS}")
        days = int(days_text)
        why = reason(form)

        def run(conn: Connection) -> tuple[AdminToken, str]:
            return tokens.create(conn, name, scopes, created_by=signed.actor, expires_in_days=days)

        token, secret = await self.console.portal.db(run, write=True)
        index = await self.console.record(
            signed,
            "admin_token.create",
            token.id,
            {
                "name": token.name,
                "scopes": sorted(s.value for s in scopes),
                "days": days,
                "reason": why,
            },
        )
        # The secret goes in this answer only (shown once), never in a URL.
        return await self._page(request, created=token, secret=secret, done=index, action="create")

    async def revoke(self, request: Request) -> Response:
        signed = await self.console.require(request, ADMIN)
        form = await self.console.form(request)
        why = reason(form)
        token_id: str = request.path_params["token"]

        def run(conn: Connection) -> None:
            known = {t.id: t for t in tokens.list_all(conn)}
            if token_id not in known:
                raise NotFound(f"no admin token {token_id!r}")
            if known[token_id].revoked_at is not None:
                raise Conflict(f"admin token {token_id} was revoked already")
            tokens.revoke(conn, token_id)

        await self.console.portal.db(run, write=True)
        index = await self.console.record(signed, "admin_token.revoke", token_id, {"reason": why})
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}/tokens?done={index}&action=revoke", status_code=303)
