"""Sign-in by emailed link (issue 7, item 6; OWASP ASVS 5.0 V6 and V7).

GET  /signin              the form (the browser gets its nonce cookie here if it had none)
POST /signin              an address -> a link, mailed after the answer; the answer is the same
                          page, with the same work before it, whether or not the account exists
GET  /signin/link/TOKEN   a page whose button confirms: mail scanners fetch links, so GET changes
                          nothing
POST /signin/link/TOKEN   uses the link up, creates the account (open enrolment), rotates the
                          session cookie
POST /signout             ends the session server-side and clears the cookie
"""

from __future__ import annotations

import asyncio
import re
from datetime import date

from sqlalchemy.engine import Connection
from starlette.background import BackgroundTask
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clearance.audit.entries import admin_action
from clearance.errors import InvalidInput, NotFound
from clearance.net.client import client_subject
from clearance.portal import links, sessions
from clearance.portal.context import Portal, now
from clearance.portal.mailer import Message, deliver
from clearance.portal.security import SESSION_COOKIE, cookie_header
from clearance.principals.models import User
from clearance.principals.service import add_user, get_user
from clearance.screening.service import screen_user

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,252}\.[^@\s]{1,63}$")


class TooManyAttempts(InvalidInput):
    status = 429
    code = "rate_limited"


def normalise_email(value: object) -> str:
    email = str(value or "").strip().lower()
    if len(email) > 320 or not _EMAIL.match(email):
        raise InvalidInput("enter a valid email address")
    return email


class SignInViews:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal

    async def form(self, request: Request) -> Response:
        if await self.portal.user(request) is not None:
            return RedirectResponse(request.scope.get("root_path", "") + "/", status_code=303)
        return self.portal.page(request, "signin.html")

    async def request_link(self, request: Request) -> Response:
        p = self.portal
        form = await p.form(request)
        email = normalise_email(form.get("email"))
        client = client_subject(p.locator.address(request.scope, dict(request.scope["headers"])))
        # The client first: one client spraying new addresses then adds no row per address.
        allowed = await asyncio.to_thread(
            lambda: p.per_client.allow(client) and p.per_address.allow(email)
        )
        if not allowed:
            raise TooManyAttempts("too many sign-in requests; wait a few minutes and try again")
        minutes = p.settings.portal.link_minutes
        token = await p.db(
            lambda c: links.issue(c, email, p.browser(request), minutes=minutes, now=now()),
            write=True,
        )
        # Whether the account exists is looked up after the answer has gone (same timing).
        link = f"{p.settings.gateway.portal_url.rstrip('/')}/signin/link/{token}"
        task = BackgroundTask(self._mail_link, email, link, minutes)
        response = p.page(request, "sent.html", minutes=minutes)
        response.background = task
        return response

    async def _mail_link(self, email: str, link: str, minutes: int) -> None:
        p = self.portal
        if p.settings.portal.enrolment != "open" and not await p.db(lambda c: _exists(c, email)):
            return
        body = (
            f"Open this link to sign in to Clearance (it works once, for {minutes} minutes, "
            f"in the browser where you asked for it):\n\n{link}\n\n"
            "If you did not ask to sign in, ignore this message."
        )
        message = Message(email, "Your Clearance sign-in link", body)
        await asyncio.to_thread(deliver, p.mailer, message)

    async def link_page(self, request: Request) -> Response:
        p = self.portal
        token = request.path_params["token"]
        email = await p.db(lambda c: links.check(c, token, p.browser(request), now=now()))
        new = not await p.db(lambda c: _exists(c, email))
        return p.page(request, "confirm.html", token=token, email=email, new_account=new)

    async def confirm(self, request: Request) -> Response:
        p = self.portal
        form = await p.form(request)
        token = request.path_params["token"]
        profile = _profile(form)
        previous = request.cookies.get(SESSION_COOKIE)
        browser = p.browser(request)
        hours = p.settings.portal.session_hours
        outbox: list[bytes] = []

        def sign_in(conn: Connection) -> tuple[str, User, bool]:
            email = links.consume(conn, token, browser, now=now())
            user, created = _account(conn, email, profile, p.settings.portal.enrolment, outbox)
            value = sessions.start(conn, user.id, hours=hours, now=now(), replacing=previous)
            return value, user, created

        value, user, created = await p.db(sign_in, write=True)
        if created:
            await p.audit.append_async(_enrolled(user))
            await _publish(p, outbox)
        response = RedirectResponse(request.scope.get("root_path", "") + "/", status_code=303)
        response.headers.append("set-cookie", cookie_header(SESSION_COOKIE, value))
        return response

    async def signout(self, request: Request) -> Response:
        p = self.portal
        await p.form(request)
        value = request.cookies.get(SESSION_COOKIE)
        if value:
            await p.db(lambda c: sessions.end(c, value), write=True)
        response = RedirectResponse(request.scope.get("root_path", "") + "/signin", status_code=303)
        response.headers.append("set-cookie", cookie_header(SESSION_COOKIE, "", max_age=0))
        return response


def _exists(conn: Connection, email: str) -> bool:
    try:
        get_user(conn, email)
    except NotFound:
        return False
    return True


def _profile(form: FormData) -> tuple[str | None, date | None]:
    """The name (as on the document) and birth date a new account declares; screened at once."""
    name = str(form.get("name") or "").strip() or None
    born_text = str(form.get("birth_date") or "").strip()
    if name is not None and len(name) > 200:
        raise InvalidInput("the name is too long")
    try:
        born = date.fromisoformat(born_text) if born_text else None
    except ValueError:
        raise InvalidInput("give the date of birth as YYYY-MM-DD") from None
    return name, born


def _account(
    conn: Connection,
    email: str,
    profile: tuple[str | None, date | None],
    enrolment: str,
    outbox: list[bytes],
) -> tuple[User, bool]:
    try:
        return get_user(conn, email), False
    except NotFound:
        if enrolment != "open":
            raise links.LinkRefused("this address has no account here") from None
    name, born = profile
    if name is None:
        raise InvalidInput("give your full name as it is written on your document")
    user = add_user(conn, email, name=name, birth_date=born)
    # Screened on creation, in the same transaction: nobody exists unscreened.
    screen_user(conn, user.id, outbox=outbox)
    return get_user(conn, email), True


def _enrolled(user: User) -> bytes:
    return admin_action(
        actor=f"portal:{user.subject_id}",
        action="user.enrol",
        target=user.subject_id,
        details={},
        subject=user.subject_id,
    )


async def _publish(portal: Portal, outbox: list[bytes]) -> None:
    for entry in outbox:
        await portal.audit.append_async(entry)
