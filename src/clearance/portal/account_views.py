"""The signed-in pages: status (facts, latest verification, models reachable) and API keys.

GET  /                  status
GET  /keys              the person's keys
POST /keys              create one; the secret is shown once, on this response only
POST /keys/ID/revoke    revoke one of the person's own keys
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clearance.audit.entries import admin_action
from clearance.errors import InvalidInput, NotFound
from clearance.identity import cip
from clearance.identity.models import Case
from clearance.identity.service import list_cases
from clearance.policy.facts import principal_facts
from clearance.policy.models import Decision, RequestContext
from clearance.portal.context import Portal
from clearance.portal.operators import REVIEWER, VIEWER, has_role
from clearance.principals.models import ApiKey, User
from clearance.principals.org_admins import administered_org
from clearance.principals.service import create_key, list_keys, revoke_key


@dataclass(frozen=True, slots=True)
class Reachable:
    model: str
    controlled: bool
    decision: Decision


class AccountViews:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal

    def reachable(self, user: User) -> list[Reachable]:
        """What the policy would answer for this person now, model by model (with fallback)."""
        state = self.portal.state.policy.state
        if state is None:
            return []
        facts = principal_facts(user)
        decider = self.portal.state.policy.decider
        return [
            Reachable(
                model.id,
                model.controlled,
                decider.decide(
                    facts,
                    model.id,
                    RequestContext(),
                    catalog=state.catalog,
                    licences=state.licences,
                    licences_version=state.licences_version,
                    allow_fallback=True,
                ),
            )
            for model in sorted(state.catalog.models.values(), key=lambda m: m.id)
        ]

    async def status(self, request: Request) -> Response:
        user = await self.portal.require_user(request)
        cases: list[Case] = await self.portal.db(lambda c: list_cases(c, user_id=user.id))
        reviewer = await self.portal.db(lambda c: has_role(c, user.id, REVIEWER))
        operator = await self.portal.db(lambda c: has_role(c, user.id, VIEWER))
        root = request.scope.get("root_path", "").removesuffix("/portal")
        admin_of = await self.portal.db(lambda c: administered_org(c, user.id))
        settings = self.portal.settings.cip
        cip_ask = await self.portal.db(lambda c: cip.to_supply(settings, c, user.id))
        return self.portal.page(
            request,
            "status.html",
            latest=cases[-1] if cases else None,
            models=self.reachable(user),
            reviewer=reviewer,
            console=f"{root}/console/" if operator else None,
            admin_of=admin_of,
            cip=bool(settings.require),
            cip_ask=cip_ask,
        )

    async def keys(self, request: Request) -> Response:
        user = await self.portal.require_user(request)
        return await self._keys_page(request, user)

    async def _keys_page(
        self, request: Request, user: User, *, created: tuple[ApiKey, str] | None = None
    ) -> Response:
        keys = await self.portal.db(lambda c: list_keys(c, user.id))
        return self.portal.page(request, "keys.html", keys=keys, created=created)

    async def create(self, request: Request) -> Response:
        p = self.portal
        user = await p.require_user(request)
        form = await p.form(request)
        name = str(form.get("name") or "").strip() or None
        if name is not None and len(name) > 100:
            raise InvalidInput("a key name is at most 100 characters")
        fallback = form.get("fallback") == "on"

        def make(conn: Connection) -> tuple[ApiKey, str]:
            return create_key(conn, user.email, name=name, allow_fallback=fallback)

        record, secret = await p.db(make, write=True)
        details = {"key_id": record.id, "allow_fallback": record.allow_fallback}
        await p.audit.append_async(_action(user, "key.create", details))
        return await self._keys_page(request, user, created=(record, secret))

    async def revoke(self, request: Request) -> Response:
        p = self.portal
        user = await p.require_user(request)
        await p.form(request)
        key_id = request.path_params["key_id"]

        def revoke(conn: Connection) -> None:
            if not any(k.id == key_id for k in list_keys(conn, user.id)):
                raise NotFound("no such key")  # another person's key is no key of yours
            revoke_key(conn, key_id)

        await p.db(revoke, write=True)
        await p.audit.append_async(_action(user, "key.revoke", {"key_id": key_id}))
        return RedirectResponse(request.scope.get("root_path", "") + "/keys", status_code=303)


def _action(user: User, action: str, details: dict[str, object]) -> bytes:
    return admin_action(
        actor=f"portal:{user.subject_id}",
        action=action,
        target=user.subject_id,
        details=details,
        subject=user.subject_id,
    )
