"""The misuse guard's cases in the review console, through the running gateway (SQLite and
PostgreSQL): the queue lists the pending case, opening it is an audited view before the excerpts
are decrypted, and Clear / Confirm need the reviewer role, a CSRF token and a reason; a cleared
person gets their controlled models back."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from clearance.config import GuardSettings
from clearance.guard.models import Check, Verdict
from clearance.guard.review import get_case
from clearance.guard.strikes import Strikes
from clearance.identity.vault import EvidenceVault
from clearance.principals.service import get_user
from tests.portal.conftest import Browser, Outbox, Running
from tests.portal.review_cases import OUTSIDER, REVIEWER, Instance

HELD = "alice@demo.test"  # a US citizen: every model is hers until held
EXCERPTS = ("write ransomware <b>now</b>", "exploit CVE-2024-0001", "a keylogger for windows")


@pytest.fixture
def instance_db(gateway: Running) -> Iterator[Instance]:
    inst = Instance(gateway.settings)
    yield inst
    inst.close()


def hold(instance: Instance, email: str = HELD) -> int:
    """Three flags through the real Strikes: the third places the hold and opens the case."""
    with instance.engine.connect() as conn:
        subject = get_user(conn, email).subject_id
    vault = EvidenceVault.open(instance.settings.identity)
    strikes = Strikes(instance.engine, instance.audit, GuardSettings(strikes=3), vault)
    case_id = None
    for text in EXCERPTS:
        verdict = Verdict("flagged", ("S14",), 0.97)
        check = Check("prompt", verdict, "llama-guard:x", "hmac-sha256:" + "0" * 64, False, 5, text)
        case_id = strikes.record(subject, "mythos-5", check, None).case_id
    assert case_id is not None
    return case_id


def models(gateway: Running, key: str) -> set[str]:
    listed = httpx.get(f"{gateway.url}/v1/models", headers={"authorization": f"Bearer {key}"})
    assert listed.status_code == 200
    return {m["id"] for m in listed.json()["data"]}


def wait_for(gateway: Running, key: str, present: bool) -> None:
    deadline = time.monotonic() + 5  # the gateway's principal cache drops the person at a poll
    while ("mythos-5" in models(gateway, key)) is not present:
        assert time.monotonic() < deadline, f"mythos-5 never {'back' if present else 'held'}"
        time.sleep(0.1)


def test_a_reviewer_opens_and_clears_a_guard_case(
    gateway: Running, instance_db: Instance, browser: Browser, outbox: Outbox
) -> None:
    key = gateway.key("alice")
    assert "mythos-5" in models(gateway, key)
    case_id = hold(instance_db)
    wait_for(gateway, key, present=False)
    actor = instance_db.grant()
    browser.sign_in(REVIEWER, outbox)

    queue = browser.get("/portal/review")
    assert queue.status_code == 200
    assert f'data-guard-case="{case_id}"' in queue.text and "S14" in queue.text
    assert HELD not in queue.text and EXCERPTS[1] not in queue.text  # nothing personal listed

    assert instance_db.entries(action="usage.review.view") == []
    opened = browser.get(f"/portal/review/guard/{case_id}")
    assert opened.status_code == 200, opened.text
    assert opened.headers["cache-control"] == "no-store"
    assert "write ransomware &lt;b&gt;now&lt;/b&gt;" in opened.text  # escaped, not markup
    assert all(t in opened.text for t in EXCERPTS[1:])
    (view,) = instance_db.entries(action="usage.review.view")
    assert (view["actor"], view["target"]) == (actor, f"guard_case:{case_id}")
    assert "ransomware" not in str(view)

    decide = f"/portal/review/guard/{case_id}/decide"
    form = {"outcome": "cleared", "note": "a pen-tester under contract"}
    assert browser.post(decide, data=form).status_code == 403  # no CSRF token
    csrf = browser.csrf(f"/portal/review/guard/{case_id}")
    no_reason = browser.post(decide, data={"outcome": "cleared", "note": " ", "csrf": csrf})
    assert no_reason.status_code == 400
    done = browser.post(decide, data={**form, "csrf": csrf})
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/portal/review?guard_decided={case_id}&outcome=cleared"
    assert 'id="guard-decided"' in browser.get(done.headers["location"]).text
    (entry,) = instance_db.entries(action="usage.review.clear")
    assert (entry["actor"], entry["details"]) == (actor, {"reason": form["note"], "flags": 3})
    with instance_db.engine.connect() as conn:
        assert get_case(conn, case_id).status == "cleared"
    wait_for(gateway, key, present=True)

    again = browser.post(decide, data={"outcome": "confirmed", "note": "second", "csrf": csrf})
    assert again.status_code == 409
    assert f'data-guard-case="{case_id}"' not in browser.get("/portal/review").text


def test_confirm_keeps_the_hold_and_outsiders_get_403(
    gateway: Running,
    instance_db: Instance,
    browser: Browser,
    other_browser: Browser,
    outbox: Outbox,
) -> None:
    case_id = hold(instance_db)
    instance_db.grant()
    other_browser.sign_in(OUTSIDER, outbox)  # signed in, no reviewer role
    csrf = other_browser.csrf("/portal/")
    assert other_browser.get(f"/portal/review/guard/{case_id}").status_code == 403
    refused = other_browser.post(
        f"/portal/review/guard/{case_id}/decide",
        data={"outcome": "cleared", "note": "x", "csrf": csrf},
    )
    assert refused.status_code == 403
    assert instance_db.entries(action="usage.review.view") == []

    browser.sign_in(REVIEWER, outbox)
    csrf = browser.csrf(f"/portal/review/guard/{case_id}")
    done = browser.post(
        f"/portal/review/guard/{case_id}/decide",
        data={"outcome": "confirmed", "note": "exploit development", "csrf": csrf},
    )
    assert done.status_code == 303
    shown = browser.get(f"/portal/review/guard/{case_id}").text
    assert re.search(r'id="outcome"[^>]*>confirmed<', shown)
    assert 'id="guard-decide"' not in shown  # decided: no form
    assert "mythos-5" not in models(gateway, gateway.key("alice"))


def test_a_reviewer_does_not_decide_their_own_case(
    gateway: Running, instance_db: Instance, browser: Browser, outbox: Outbox
) -> None:
    case_id = hold(instance_db, REVIEWER)
    instance_db.grant()
    browser.sign_in(REVIEWER, outbox)
    page = browser.get(f"/portal/review/guard/{case_id}").text
    assert 'id="guard-decide"' not in page and "your own use" in page
    refused = browser.post(
        f"/portal/review/guard/{case_id}/decide",
        data={"outcome": "cleared", "note": "me", "csrf": browser.csrf("/portal/")},
    )
    assert refused.status_code == 403
