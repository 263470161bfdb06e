"""`Portal`: what every view needs (settings, storage, templates, CSRF, the signed-in user)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import jinja2
from sqlalchemy.engine import Connection, Engine
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from clearance.audit.service import AuditLog
from clearance.config import Settings
from clearance.errors import AuthenticationError, PermissionDenied
from clearance.identity.vault import EvidenceVault
from clearance.net.client import ClientLocator
from clearance.policy.state import DecisionState
from clearance.portal import sessions
from clearance.portal.mailer import Mailer
from clearance.portal.ratelimit import RateLimiter, limiter_key
from clearance.portal.reasons import explain
from clearance.portal.security import BROWSER_COOKIE, CSRF_FIELD, SESSION_COOKIE, Csrf
from clearance.principals.models import User
from clearance.principals.service import get_user_by_id

TEMPLATES = Path(__file__).parent / "templates"
T = TypeVar("T")


class SignInRequired(AuthenticationError):
    code = "signin_required"


def now() -> datetime:
    return datetime.now(UTC)


class Portal:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        audit: AuditLog,
        state: DecisionState,
        mailer: Mailer,
        csrf_key: bytes,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.audit = audit
        self.state = state
        self.mailer = mailer
        self.csrf = Csrf(csrf_key)
        self._vault: EvidenceVault | None = None
        self.locator = ClientLocator(settings.gateway.trusted_proxies)
        # In the database, so every worker and host shares one budget (see ratelimit.py).
        limits, key = settings.portal, limiter_key(settings)
        self.per_address = RateLimiter(
            engine, key, scope="signin-address", limit=limits.signins_per_address
        )
        self.per_client = RateLimiter(
            engine, key, scope="signin-client", limit=limits.signins_per_client
        )
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
        self.templates = Jinja2Templates(env=env)
        self.templates.env.filters["explain"] = explain

    def vault(self) -> EvidenceVault:
        """The evidence vault, opened on first use: uploads are sealed in it before they are
        queued (an instance without an identity master key serves everything else)."""
        if self._vault is None:
            self._vault = EvidenceVault.open(self.settings.identity)
        return self._vault

    async def db(self, work: Callable[[Connection], T], *, write: bool = False) -> T:
        """Run `work` in a transaction (write) or a connection (read), off the event loop."""

        def run() -> T:
            if write:
                with self.engine.begin() as conn:
                    return work(conn)
            with self.engine.connect() as conn:
                return work(conn)

        return await asyncio.to_thread(run)

    def page(self, request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        values.setdefault("user", getattr(request.state, "user", None))
        context = {
            "base": request.scope.get("root_path", ""),
            "csrf": self.csrf.token(request),
            "csrf_field": CSRF_FIELD,
            **values,
        }
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    async def form(self, request: Request, *, max_files: int = 0) -> FormData:
        """The POSTed form, once its CSRF token and origin have been checked."""
        form = await request.form(max_files=max_files, max_fields=20, max_part_size=64 * 1024)
        submitted = form.get(CSRF_FIELD)
        try:
            self.csrf.check(request, submitted if isinstance(submitted, str) else None)
        except PermissionDenied:
            await form.close()  # any uploaded files' spooled temporaries
            raise
        return form

    @staticmethod
    def browser(request: Request) -> str:
        return request.cookies.get(BROWSER_COOKIE, "")

    async def user(self, request: Request) -> User | None:
        value = request.cookies.get(SESSION_COOKIE)
        if not value:
            return None

        def lookup(conn: Connection) -> User | None:
            user_id = sessions.user_of(conn, value, now=now())
            return None if user_id is None else get_user_by_id(conn, user_id)

        user = await self.db(lookup)
        request.state.user = user
        return user

    async def require_user(self, request: Request) -> User:
        user = await self.user(request)
        if user is None:
            raise SignInRequired("sign in to continue")
        return user
