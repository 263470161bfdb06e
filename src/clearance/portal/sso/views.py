"""Operator sign-in by OpenID Connect, authorization code flow with PKCE (Core 1.0 §3.1).

GET /signin/sso            a pending sign-in (state, nonce, PKCE verifier) bound to this browser,
                           then 303 to the provider's authorization endpoint
GET /signin/sso/callback   the provider's answer: the pending sign-in used up, the code exchanged,
                           the ID token validated (provider.py), the account found or linked
                           (service.py), its roles set from its groups (provisioning.py), the
                           session cookie rotated as the emailed link does; then 303 to /console

An identity whose groups give no console role is refused (no session): SSO is the operators'
door; everyone else signs in with the emailed link. A token without the groups claim changes
no role (the provider may provision groups by SCIM instead); its account signs in if it holds
one already.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clearance.audit.entries import admin_action
from clearance.errors import InvalidInput, NotFound, PermissionDenied
from clearance.portal import sessions
from clearance.portal.context import Portal, now
from clearance.portal.operators import roles_of
from clearance.portal.provisioning import GroupRoles, apply_roles
from clearance.portal.security import SESSION_COOKIE, cookie_header
from clearance.portal.sso import service
from clearance.principals.models import User

if TYPE_CHECKING:
    from clearance.portal.sso.provider import OpenIdProvider


class SsoViews:
    def __init__(self, portal: Portal, provider: OpenIdProvider | None) -> None:
        self.portal = portal
        self.provider = provider
        self.groups = GroupRoles.from_settings(portal.settings.sso)
        # The sign-in page (signin.html) shows the button when a provider is configured.
        button = portal.settings.sso.button if provider is not None else None
        portal.templates.env.globals["sso_button"] = button

    def _provider(self) -> OpenIdProvider:
        if self.provider is None:
            raise NotFound("single sign-on is not configured here")
        return self.provider

    async def start(self, request: Request) -> Response:
        provider = self._provider()
        browser, verifier = self.portal.browser(request), service.new_verifier()
        state, nonce = await self.portal.db(
            lambda c: service.start(c, browser, now=now(), verifier=verifier), write=True
        )
        url = await provider.authorization_url(state, nonce, verifier)
        return RedirectResponse(url, status_code=303)

    async def callback(self, request: Request) -> Response:
        provider, p = self._provider(), self.portal
        params = request.query_params
        state, browser = params.get("state") or "", p.browser(request)
        pending = await p.db(lambda c: service.consume(c, state), write=True)
        service.check(pending, browser, now=now())
        if params.get("error"):  # RFC 6749 §4.1.2.1, after the state is checked and spent
            raise PermissionDenied(
                f"the identity provider did not sign you in ({params['error'][:100]})"
            )
        code = params.get("code")
        if not code:
            raise InvalidInput("the identity provider sent no code")
        tokens = await provider.exchange(code, pending.verifier)
        claims = await provider.verify_id_token(tokens.get("id_token"), pending.nonce)
        identity = service.Identity.from_claims(claims, p.settings.sso.groups_claim)
        wanted = None if identity.groups is None else self.groups.roles(identity.groups)
        previous = request.cookies.get(SESSION_COOKIE)
        hours = p.settings.portal.session_hours
        outbox: list[bytes] = []
        actor = f"sso:{identity.issuer}"

        def sign_in(conn: Connection) -> tuple[User, bool, list[bytes], str | None]:
            user, created = service.account(
                conn, identity, now=now(), outbox=outbox, create=bool(wanted)
            )
            changes = []
            if wanted is not None:
                changes = apply_roles(
                    conn, user.id, wanted, self.groups.managed, actor=actor, source="sso"
                )
            if not roles_of(conn, user.id):
                return user, created, changes, None
            value = sessions.start(conn, user.id, hours=hours, now=now(), replacing=previous)
            return user, created, changes, value

        # A refusal that changes nothing (no account made, no role taken) raises in there; one
        # that took roles away commits and is recorded before the visitor is told.
        user, created, changes, value = await p.db(sign_in, write=True)
        for entry in [*([_enrolled(user)] if created else []), *outbox, *changes]:
            await p.audit.append_async(entry)
        if value is None:
            raise PermissionDenied(service.NO_ROLE)
        await p.audit.append_async(
            admin_action(
                actor=f"portal:{user.subject_id}",
                action="operator.signin",
                target=user.subject_id,
                details={"method": "oidc", "issuer": identity.issuer},
                subject=user.subject_id,
            )
        )
        root = request.scope.get("root_path", "").removesuffix("/portal")
        response = RedirectResponse(f"{root}/console/", status_code=303)
        response.headers.append("set-cookie", cookie_header(SESSION_COOKIE, value))
        return response


def _enrolled(user: User) -> bytes:
    return admin_action(
        actor=f"portal:{user.subject_id}",
        action="user.enrol",
        target=user.subject_id,
        details={"method": "oidc"},
        subject=user.subject_id,
    )
