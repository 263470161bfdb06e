"""Sign-in by emailed link, sessions, CSRF, headers (issue 7 item 6) on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from clearance.app import create_app
from clearance.net.serving import serve_in_thread
from clearance.portal import links
from clearance.portal.tables import portal_sessions, portal_signin_links
from clearance.principals.service import get_user
from clearance.store import connect
from tests.portal.conftest import Browser, Outbox, Running

ALICE = "alice@demo.test"


def test_pages_carry_the_security_headers(browser: Browser) -> None:
    page = browser.get("/portal/signin")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("__Host-clearance_browser=")
    for attribute in ("Path=/", "Secure", "HttpOnly", "SameSite=Lax"):
        assert attribute in cookie
    assert "domain" not in cookie.lower()
    script = browser.get("/portal/static/verify.js")
    assert script.status_code == 200
    assert script.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in browser.get("/portal/signin").text  # no inline script anywhere


def test_sign_in_rotates_the_session_and_sign_out_kills_it(
    gateway: Running, browser: Browser, outbox: Outbox
) -> None:
    assert browser.get("/portal/").headers["location"] == "/portal/signin"
    browser.sign_in(ALICE, outbox)
    first = browser.cookies["__Host-clearance_session"]
    status = browser.get("/portal/")
    assert status.status_code == 200
    assert 'data-state="verified"' in status.text and 'data-model="mythos-5"' in status.text
    assert 'data-model="mythos-5" data-effect="allow"' in status.text

    browser.sign_in(ALICE, outbox)  # signing in again issues a new session, the old one dies
    second = browser.cookies["__Host-clearance_session"]
    assert second != first
    stale = Browser(gateway.url)
    stale.cookies = {**browser.cookies, "__Host-clearance_session": first}
    assert stale.get("/portal/").status_code == 303
    stale.close()

    engine = connect(gateway.settings.database_url)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(portal_sessions.c.session_hash)).scalars().all()
    engine.dispose()
    assert links.digest(second) in stored and second not in stored  # only the digest is kept

    out = browser.post("/portal/signout", data={"csrf": browser.csrf("/portal/")})
    assert out.status_code == 303
    assert "Max-Age=0" in out.headers["set-cookie"]
    replay = Browser(gateway.url)
    replay.cookies = {**browser.cookies, "__Host-clearance_session": second}
    assert replay.get("/portal/").status_code == 303  # the server forgot it, not just the browser
    replay.close()


def test_a_link_works_once(browser: Browser, outbox: Outbox) -> None:
    browser.ask_link(ALICE)
    token = outbox.link_for(ALICE)
    page = browser.get(f"/portal/signin/link/{token}")
    assert page.status_code == 200 and 'method="post"' in page.text
    assert browser.get(f"/portal/signin/link/{token}").status_code == 200  # GET changes nothing
    assert browser.confirm(token).status_code == 303
    again = browser.post(f"/portal/signin/link/{token}", data={"csrf": browser.csrf("/portal/")})
    assert again.status_code == 401 and "used already" in again.text


def test_a_link_expires(gateway: Running, browser: Browser) -> None:
    browser.get("/portal/signin")
    nonce = browser.cookies["__Host-clearance_browser"]
    engine = connect(gateway.settings.database_url)
    eleven_minutes_ago = datetime.now(UTC) - timedelta(minutes=11)
    with engine.begin() as conn:
        token = links.issue(conn, ALICE, nonce, minutes=10, now=eleven_minutes_ago)
        row = conn.execute(sa.select(portal_signin_links)).one()
    engine.dispose()
    assert row.token_hash == links.digest(token) and token not in row  # stored hashed
    page = browser.get(f"/portal/signin/link/{token}")
    assert page.status_code == 401 and "expired" in page.text
    csrf = browser.csrf()
    refused = browser.post(f"/portal/signin/link/{token}", data={"csrf": csrf})
    assert refused.status_code == 401
    assert "__Host-clearance_session" not in browser.cookies


def test_a_link_works_only_in_the_browser_that_asked(
    browser: Browser, other_browser: Browser, outbox: Outbox
) -> None:
    browser.ask_link(ALICE)
    token = outbox.link_for(ALICE)
    page = other_browser.get(f"/portal/signin/link/{token}")
    assert page.status_code == 401 and "browser where you asked" in page.text
    refused = other_browser.post(
        f"/portal/signin/link/{token}", data={"csrf": other_browser.csrf()}
    )
    assert refused.status_code == 401
    assert browser.confirm(token).status_code == 303  # not used up by the wrong browser


def test_posts_without_a_valid_csrf_token_are_refused(
    browser: Browser, other_browser: Browser, outbox: Outbox
) -> None:
    assert browser.post("/portal/signin", data={"email": ALICE}).status_code == 403
    foreign = other_browser.csrf()  # a real token, for another browser
    assert browser.post("/portal/signin", data={"email": ALICE, "csrf": foreign}).status_code == 403
    good = browser.csrf()
    cross = browser.post(
        "/portal/signin",
        data={"email": ALICE, "csrf": good},
        headers={"origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    assert outbox.mails_to(ALICE) == 0

    browser.sign_in(ALICE, outbox)
    for path in ("/portal/keys", "/portal/signout", "/portal/keys/key_x/revoke", "/portal/verify"):
        assert browser.post(path, data={"csrf": foreign}).status_code == 403, path
    stale = good  # the anonymous token no longer holds once signed in (the session rotated)
    assert browser.post("/portal/keys", data={"csrf": stale}).status_code == 403
    assert browser.get("/portal/").status_code == 200  # still signed in


def test_the_answer_is_the_same_for_unknown_addresses(browser: Browser, outbox: Outbox) -> None:
    known = browser.ask_link(ALICE)
    unknown = browser.ask_link("nobody-here@example.org")
    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text
    drop = {"date", "content-length"}
    assert {k: v for k, v in known.headers.items() if k not in drop} == {
        k: v for k, v in unknown.headers.items() if k not in drop
    }


@pytest.fixture
def closed_gateway(gateway: Running) -> Iterator[str]:
    """A second worker on the same database with enrolment closed."""
    settings = gateway.settings
    closed = dataclasses.replace(
        settings, portal=dataclasses.replace(settings.portal, enrolment="closed")
    )
    with serve_in_thread(create_app(closed)) as url:
        yield url


def test_closed_enrolment_mails_only_existing_accounts(closed_gateway: str, outbox: Outbox) -> None:
    browser = Browser(closed_gateway)
    known = browser.ask_link(ALICE)
    unknown = browser.ask_link("stranger@example.org")
    assert known.text == unknown.text and known.status_code == unknown.status_code == 200
    outbox.link_for(ALICE)
    assert outbox.mails_to("stranger@example.org") == 0
    browser.close()


def test_sign_in_requests_are_rate_limited(browser: Browser, outbox: Outbox) -> None:
    answers = [browser.ask_link("limited@example.org").status_code for _ in range(6)]
    assert answers == [200] * 5 + [429]
    assert browser.ask_link(ALICE).status_code == 200  # the limit is per address


def test_a_new_address_enrols_with_its_declared_name(
    gateway: Running, browser: Browser, outbox: Outbox
) -> None:
    email = "new.person@example.org"
    browser.ask_link(email)
    token = outbox.link_for(email)
    page = browser.get(f"/portal/signin/link/{token}")
    assert 'name="name"' in page.text  # a new account declares its name
    nameless = browser.confirm(token)
    assert nameless.status_code == 400 and "full name" in nameless.text
    assert browser.confirm(token, name="Ada Example", birth_date="1990-02-03").status_code == 303
    status = browser.get("/portal/")
    assert 'data-state="unverified"' in status.text
    assert 'data-model="mythos-5" data-effect="deny"' not in status.text  # falls back instead
    assert 'data-model="fable-4" data-effect="allow"' in status.text
    engine = connect(gateway.settings.database_url)
    with engine.connect() as conn:
        user = get_user(conn, email)
    engine.dispose()
    assert (user.name, str(user.birth_date)) == ("Ada Example", "1990-02-03")
    assert user.screening_status.value == "clear"  # screened when the account was created
