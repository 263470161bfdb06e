"""Licences expired and renewed from the console, through the running gateway on SQLite and
PostgreSQL (revoking one is tests/portal/test_console.py).

A viewer sees no form and every POST is 403. An operator expires Acme's licence with a reason
(`licence.expire`, as `clearance licences expire` writes it, with the reason): the licensed
persona falls back at once; then renews it to a new date (`licence.renew`): served again. Each
form carries the expiry the page showed: a licence changed since is 409. A missing reason, a
date that is not one or lies in the past name their field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from clearance.portal import operators
from tests.portal.conftest import Outbox, Running
from tests.portal.review_cases import Instance
from tests.portal.test_console import OPERATOR, VIEWER, db, done, entry, served, signed_in

__all__ = ["db"]
PAGE = "/console/licences"
_ROW = re.compile(
    r'<tr data-licence="(\d+)" data-state="(\w+)">(?:.|\n)*?<td>(\d{4}-\d\d-\d\d)</td>'
)


def acme(browser_text: str) -> tuple[str, str, str]:
    """Acme's licence as the page shows it: id, state, expiry."""
    found = _ROW.search(browser_text)
    assert found, browser_text
    return found.group(1), found.group(2), found.group(3)


def test_a_viewer_cannot_expire_or_renew(gateway: Running, db: Instance, outbox: Outbox) -> None:
    browser, _ = signed_in(gateway, db, outbox, VIEWER, operators.VIEWER)
    try:
        shown = browser.get(PAGE).text
        licence, state, expires = acme(shown)
        assert state == "active" and "/expire" not in shown and "/renew" not in shown
        token = browser.csrf(PAGE)
        base = {"csrf": token, "expires": expires, "reason": "viewer tries"}
        assert browser.post(f"{PAGE}/{licence}/expire", data=base).status_code == 403
        renew = {**base, "until": "2099-01-01"}
        assert browser.post(f"{PAGE}/{licence}/renew", data=renew).status_code == 403
    finally:
        browser.close()
    assert db.entries(action="licence.expire") == db.entries(action="licence.renew") == []


def test_an_operator_expires_then_renews_a_licence(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    erik = gateway.key("erik")  # a Swede at Acme Corp, whose licence covers fable-5
    assert served(gateway, erik, "fable-5") == "fable-5"
    browser, actor = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    today = datetime.now(UTC).date()
    try:
        licence, _, expires = acme(browser.get(PAGE).text)

        def post(verb: str, **fields: str) -> tuple[int, str]:
            answer = browser.post(
                f"{PAGE}/{licence}/{verb}", data={"csrf": browser.csrf(PAGE), **fields}
            )
            return answer.status_code, answer.text

        status, page = post("expire", expires=expires, reason=" ")
        assert status == 400 and 'data-field="reason"' in page
        status, page = post("expire", expires="soon", reason="x")
        assert status == 400 and 'data-field="expires"' in page

        answer = browser.post(
            f"{PAGE}/{licence}/expire",
            data={"csrf": browser.csrf(PAGE), "expires": expires, "reason": "BIS: not renewed"},
        )
        index, action = done(browser, answer)
        expired = entry(db, index)
        assert (action, expired["action"], expired["actor"]) == ("expire", "licence.expire", actor)
        yesterday = (today - timedelta(days=1)).isoformat()
        assert expired["details"] == {
            "licence_id": int(licence),
            "number": "D1234567",
            "expires": yesterday,
            "reason": "BIS: not renewed",
        }
        assert acme(browser.get(PAGE).text)[1:] == ("expired", yesterday)
        gateway.poll()
        assert served(gateway, erik, "fable-5") == "fable-4"  # no longer licensed: falls back

        # the page before the expiry showed the old date: a stale form changes nothing
        status, page = post("renew", expires=expires, until="2099-01-01", reason="stale tab")
        assert status == 409 and "changed since you opened it" in page
        status, page = post("renew", expires=yesterday, until="", reason="x")
        assert status == 400 and 'data-field="until"' in page
        status, page = post("renew", expires=yesterday, until="2001-01-01", reason="x")
        assert status == 400 and 'data-field="until"' in page and "today or later" in page

        until = (today + timedelta(days=400)).isoformat()
        answer = browser.post(
            f"{PAGE}/{licence}/renew",
            data={
                "csrf": browser.csrf(PAGE),
                "expires": yesterday,
                "until": until,
                "reason": "BIS renewed it",
            },
        )
        index, action = done(browser, answer)
        renewed = entry(db, index)
        assert (action, renewed["action"], renewed["actor"]) == ("renew", "licence.renew", actor)
        assert renewed["details"]["expires"] == until
        assert renewed["details"]["reason"] == "BIS renewed it"
        assert acme(browser.get(PAGE).text)[1:] == ("active", until)
        gateway.poll()
        assert served(gateway, erik, "fable-5") == "fable-5"
        assert len(db.entries(action="licence.renew")) == 1
    finally:
        browser.close()
