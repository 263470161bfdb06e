"""The operator console (/console) through the running gateway, on SQLite and PostgreSQL.

Operators sign in through the portal's emailed link like anyone; the console checks their role
on every request. A viewer sees the dashboard, the catalog and people but every change answers
403 server-side; an operator suspends a model (the persona is refused at once), restores it to
10 % then everyone, suspends a person; each change shows its audit entry's index. A change made
on a page rendered before another change is 409; a form without its CSRF token is 403; a missing
reason names the field; the last admin cannot be revoked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa
from openai.types.chat import ChatCompletionMessageParam

from clearance.audit.tables import audit_entries
from clearance.portal import operators
from tests.portal.conftest import Browser, Outbox, Running
from tests.portal.review_cases import Instance

OPERATOR = "dana@demo.test"
VIEWER = "luis@demo.test"
ADMIN = "sven@demo.test"
NOBODY = "erik@demo.test"  # signed in, no operator role
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]
_VERSION = re.compile(r'data-version="([0-9a-f]{20})"')
_DONE = re.compile(r'id="done" data-index="(\d+)" data-action="(\w+)"')


@pytest.fixture
def db(gateway: Running) -> Iterator[Instance]:
    inst = Instance(gateway.settings)
    yield inst
    inst.close()


def entry(db: Instance, index: int) -> dict[str, Any]:
    with db.engine.connect() as conn:
        raw = conn.execute(
            sa.select(audit_entries.c.entry).where(audit_entries.c.idx == index)
        ).scalar_one()
    return dict(json.loads(raw))


def signed_in(
    gateway: Running, db: Instance, outbox: Outbox, email: str, *roles: str
) -> tuple[Browser, str]:
    """A browser signed in as `email`, holding `roles`; and its actor name in the log."""
    actor = ""
    for role in roles:
        actor = db.grant(email, role)
    browser = Browser(gateway.url)
    browser.sign_in(email, outbox)
    return browser, actor


def change(browser: Browser, page: str, action: str, **fields: str) -> tuple[httpx.Response, str]:
    """POST a console form as the page renders it (CSRF token and model version included)."""
    shown = browser.get(page)
    assert shown.status_code == 200, shown.text
    version = _VERSION.search(shown.text)
    data = {"csrf": browser.csrf(page), **fields}
    if version is not None and "version" not in fields:
        data["version"] = version.group(1)
    return browser.post(action, data=data), shown.text


def done(browser: Browser, response: httpx.Response) -> tuple[int, str]:
    """The audit index and action the page shows after a change (Post/Redirect/Get)."""
    assert response.status_code == 303, response.text
    page = browser.get(response.headers["location"])
    assert page.status_code == 200
    found = _DONE.search(page.text)
    assert found, page.text
    return int(found.group(1)), found.group(2)


def refused_model(gateway: Running, key: str, model: str) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as refused:
        gateway.openai(key).chat.completions.create(model=model, messages=HELLO)
    return refused.value


def served(gateway: Running, key: str, model: str) -> str:
    raw = gateway.openai(key).chat.completions.with_raw_response.create(model=model, messages=HELLO)
    return raw.headers["clearance-model-served"]


def test_signed_out_goes_to_sign_in_and_no_role_is_403(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    anonymous = Browser(gateway.url)
    try:
        away = anonymous.get("/console/models")
        assert away.status_code == 303 and away.headers["location"] == "/portal/signin"
    finally:
        anonymous.close()
    browser, _ = signed_in(gateway, db, outbox, NOBODY)
    try:
        for path in ("/console/", "/console/models", "/console/people", "/console/operators"):
            page = browser.get(path)
            assert page.status_code == 403, path
            assert page.headers["cache-control"] == "no-store"
            assert "default-src 'none'" in page.headers["content-security-policy"]
        db.grant(NOBODY, operators.REVIEWER)  # reviewing is apart from the console's roles
        assert browser.get("/console/").status_code == 403
    finally:
        browser.close()


def test_a_viewer_sees_the_console_and_every_change_is_403(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    browser, _ = signed_in(gateway, db, outbox, VIEWER, operators.VIEWER)
    try:
        status = browser.get("/portal/")
        assert '<p id="console-link">' in status.text and 'href="/console/"' in status.text
        home = browser.get("/console/")
        assert home.status_code == 200 and 'id="decisions"' in home.text
        catalog = browser.get("/console/models")
        assert catalog.status_code == 200
        assert 'data-model="mythos-5" data-state="active"' in catalog.text
        model = browser.get("/console/models/mythos-5")
        assert 'id="read-only"' in model.text and 'id="suspend-form"' not in model.text
        version = _VERSION.search(model.text)
        assert version
        people = browser.get("/console/people", params={"q": "alice"})
        assert people.status_code == 200 and "alice@demo.test" in people.text
        subject = re.search(r'data-subject="([^"]+)"', people.text)
        assert subject
        person = browser.get(f"/console/people/{subject.group(1)}")
        assert person.status_code == 200 and 'id="suspend-form"' not in person.text

        token = browser.csrf("/console/models/mythos-5")
        base = {"csrf": token, "version": version.group(1), "reason": "viewer tries"}
        posts = {
            "/console/models/mythos-5/suspend": base,
            "/console/models/mythos-5/resume": {**base, "step": "everyone"},
            "/console/models/mythos-5/reclassify": {
                **base,
                "classification": "uncontrolled",
                "rationale": "viewer tries",
            },
            f"/console/people/{subject.group(1)}/suspend": base,
            "/console/operators/grant": {**base, "email": VIEWER, "role": "admin"},
        }
        before = len(db.entries(type="admin_action"))
        for path, data in posts.items():
            answer = browser.post(path, data=data)
            assert answer.status_code == 403, (path, answer.text)  # not only a hidden button
        assert browser.get("/console/operators").status_code == 403
        changes = [e for e in db.entries(type="admin_action")[before:]]
        assert [e["action"] for e in changes if e["action"] not in ("user.view", "user.list")] == []
    finally:
        browser.close()
    assert served(gateway, gateway.key("alice"), "mythos-5") == "mythos-5"


def test_an_operator_suspends_a_model_then_restores_it_to_10_percent_then_everyone(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    strict = gateway.strict_key("alice")  # no fallback: a refusal is a 451
    assert served(gateway, strict, "mythos-5") == "mythos-5"
    browser, actor = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    page = "/console/models/mythos-5"
    try:
        answer, _ = change(browser, page, f"{page}/suspend", reason="incident 7: weights exposure")
        index, action = done(browser, answer)
        assert action == "suspend"
        suspended = entry(db, index)
        assert (suspended["action"], suspended["actor"], suspended["target"]) == (
            "model.suspend",
            actor,
            "mythos-5",
        )
        assert suspended["details"] == {"reason": "incident 7: weights exposure"}
        gateway.poll()
        refused = refused_model(gateway, strict, "mythos-5")
        assert refused.status_code == 451 and "model-suspended" in refused.message

        answer, _ = change(
            browser, page, f"{page}/resume", step="percent", percent="10", reason="canary"
        )
        index, _ = done(browser, answer)
        step = entry(db, index)
        assert (step["action"], step["actor"]) == ("model.resume", actor)
        assert step["details"] == {
            "reason": "canary",
            "status": "restoring",
            "cohort": {"percent": 10, "orgs": [], "internal": False},
            "previous_cohort": None,
        }
        shown = browser.get(page).text
        assert 'data-state="restoring"' in shown and "10 %" in shown

        answer, _ = change(
            browser, page, f"{page}/resume", step="percent", percent="100", reason="all clear"
        )
        index, _ = done(browser, answer)
        assert entry(db, index)["details"]["cohort"] == "everyone"
        assert 'data-state="active"' in browser.get(page).text
        gateway.poll()
        assert served(gateway, strict, "mythos-5") == "mythos-5"
    finally:
        browser.close()


def test_a_stale_edit_is_409_and_changes_nothing(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    first, _ = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    second, _ = signed_in(gateway, db, outbox, ADMIN, operators.ADMIN)
    page = "/console/models/fable-5"
    try:
        stale = _VERSION.search(first.get(page).text)
        assert stale
        token = first.csrf(page)
        answer, _ = change(second, page, f"{page}/suspend", reason="incident 8")
        assert answer.status_code == 303  # the other operator got there first
        late = first.post(
            f"{page}/reclassify",
            data={
                "csrf": token,
                "version": stale.group(1),
                "classification": "controlled",
                "rationale": "now above the threshold",
            },
        )
        assert late.status_code == 409
        assert "changed since you opened it" in late.text
        assert db.entries(action="model.reclassify") == []
        forged = first.post(
            f"{page}/suspend", data={"csrf": token, "version": "0" * 20, "reason": "x"}
        )
        assert forged.status_code == 409
    finally:
        first.close()
        second.close()


def test_forms_are_checked_server_side_naming_the_field_and_need_their_csrf_token(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    browser, _ = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    page = "/console/models/fable-4"
    try:
        no_reason, _ = change(browser, page, f"{page}/suspend", reason="  ")
        assert no_reason.status_code == 400
        assert 'data-field="reason"' in no_reason.text
        change(browser, page, f"{page}/suspend", reason="incident 9")
        bad_percent, _ = change(
            browser, page, f"{page}/resume", step="percent", percent="0", reason="x"
        )
        assert bad_percent.status_code == 400 and 'data-field="percent"' in bad_percent.text
        bad_step, _ = change(browser, page, f"{page}/resume", step="half", reason="x")
        assert bad_step.status_code == 400 and 'data-field="step"' in bad_step.text
        bad_class, _ = change(
            browser, page, f"{page}/reclassify", classification="secret", rationale="x"
        )
        assert bad_class.status_code == 400 and 'data-field="classification"' in bad_class.text
        no_version = browser.post(
            f"{page}/suspend", data={"csrf": browser.csrf(page), "reason": "again"}
        )
        assert no_version.status_code == 400 and 'data-field="version"' in no_version.text

        version = _VERSION.search(browser.get(page).text)
        assert version
        no_token = browser.post(
            f"{page}/resume",
            data={"version": version.group(1), "step": "everyone", "reason": "x"},
        )
        assert no_token.status_code == 403
        other_site = browser.post(
            f"{page}/resume",
            data={
                "csrf": browser.csrf(page),
                "version": version.group(1),
                "step": "everyone",
                "reason": "x",
            },
            headers={"origin": "https://evil.example"},
        )
        assert other_site.status_code == 403
        assert 'data-state="suspended"' in browser.get(page).text  # nothing went through
    finally:
        browser.close()


def test_an_operator_suspends_and_reinstates_a_person(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    browser, actor = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    try:
        found = browser.get("/console/people", params={"q": "Alice"})
        subject = re.search(
            r'<tr data-subject="([^"]+)">\s*<td><a[^>]*>alice@demo.test', found.text
        )
        assert subject, found.text
        page = f"/console/people/{subject.group(1)}"
        answer, _ = change(browser, page, f"{page}/suspend", reason="fraud report 12")
        index, action = done(browser, answer)
        suspended = entry(db, index)
        assert (action, suspended["action"], suspended["actor"]) == (
            "suspend",
            "user.suspend",
            actor,
        )
        assert suspended["subject"] == subject.group(1)
        assert "alice@demo.test" not in str(suspended)  # the pseudonym only
        gateway.poll()
        refused = refused_model(gateway, gateway.key("alice"), "fable-4")
        assert refused.status_code == 451 and "account-suspended" in refused.message
        answer, _ = change(browser, page, f"{page}/reinstate", reason="cleared")
        assert done(browser, answer)[1] == "reinstate"
        gateway.poll()
        assert served(gateway, gateway.key("alice"), "fable-4") == "fable-4"
        assert db.entries(action="user.view", actor=actor)  # looking is itself recorded
    finally:
        browser.close()


def test_admins_grant_roles_and_the_last_admin_cannot_be_revoked(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    browser, actor = signed_in(gateway, db, outbox, ADMIN, operators.ADMIN)
    try:
        admins = browser.get("/console/operators")
        assert admins.status_code == 200
        own = re.search(r'<tr data-subject="([^"]+)" data-roles="admin">', admins.text)
        assert own, admins.text
        page = "/console/operators"
        last, _ = change(
            browser, page, f"{page}/revoke", subject=own.group(1), role="admin", reason="leaving"
        )
        assert last.status_code == 409 and "last admin" in last.text
        assert db.entries(action="operator.revoke") == []

        unknown, _ = change(
            browser, page, f"{page}/grant", email="nobody@example.org", role="admin", reason="x"
        )
        assert unknown.status_code == 400 and 'data-field="email"' in unknown.text
        granted, _ = change(
            browser, page, f"{page}/grant", email=OPERATOR, role="admin", reason="cover"
        )
        index, _ = done(browser, granted)
        grant = entry(db, index)
        assert (grant["action"], grant["actor"]) == ("operator.grant", actor)
        assert grant["details"] == {"role": "admin", "roles": ["admin"], "reason": "cover"}

        revoked, _ = change(
            browser, page, f"{page}/revoke", subject=own.group(1), role="admin", reason="leaving"
        )
        assert revoked.status_code == 303  # another admin remains
        (gone,) = db.entries(action="operator.revoke")
        assert (gone["actor"], gone["details"]) == (
            actor,
            {"role": "admin", "roles": [], "reason": "leaving"},
        )
        assert browser.get(revoked.headers["location"]).status_code == 403  # at the next click
    finally:
        browser.close()


def test_the_dashboard_counts_todays_decisions_and_the_queues(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    browser, _ = signed_in(gateway, db, outbox, VIEWER, operators.VIEWER)
    try:
        before = browser.get("/console/")
        total = int(re.search(r'id="decisions" data-total="(\d+)"', before.text).group(1))  # type: ignore[union-attr]
        served(gateway, gateway.key("alice"), "mythos-5")
        refused = refused_model(gateway, gateway.strict_key("nina"), "mythos-5")
        assert refused.status_code == 451
        db.review_case()  # an enrolment waiting for a reviewer
        after = browser.get("/console/").text
        assert f'data-total="{total + 2}"' in after
        assert re.search(r'id="by-model">\s*<tbody>(.|\n)*data-key="mythos-5"', after)
        assert re.search(r'id="refusals">(.|\n)*data-key="[a-z-]+"><td><code>', after)
        waiting = re.search(r'data-key="review_identity"><td>.*?</td><td class="num">(\d+)', after)
        assert waiting and int(waiting.group(1)) == 1
    finally:
        browser.close()


def test_an_operator_revokes_a_licence_and_the_licensed_persona_falls_back(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    erik = gateway.key("erik")  # a Swede at Acme Corp, whose licence covers fable-5
    assert served(gateway, erik, "fable-5") == "fable-5"
    viewer, _ = signed_in(gateway, db, outbox, VIEWER, operators.VIEWER)
    browser, actor = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    try:
        orgs = browser.get("/console/orgs")
        assert orgs.status_code == 200 and 'data-org="Acme Corp"' in orgs.text
        listed = browser.get("/console/licences", params={"org": "Acme Corp"})
        found = re.search(r'<tr data-licence="(\d+)" data-state="active">', listed.text)
        assert found, listed.text
        licence = found.group(1)
        shown = viewer.get("/console/licences")
        assert f'data-licence="{licence}"' in shown.text and "/revoke" not in shown.text
        sneaky = viewer.post(
            f"/console/licences/{licence}/revoke",
            data={"csrf": viewer.csrf("/console/licences"), "reason": "viewer tries"},
        )
        assert sneaky.status_code == 403

        answer, _ = change(
            browser,
            "/console/licences",
            f"/console/licences/{licence}/revoke",
            reason="BIS revoked it on 2026-12-01",
        )
        index, action = done(browser, answer)
        revoked = entry(db, index)
        assert (action, revoked["action"], revoked["actor"]) == ("revoke", "licence.revoke", actor)
        assert revoked["details"]["reason"] == "BIS revoked it on 2026-12-01"
        assert (
            f'data-licence="{licence}" data-state="revoked"'
            in browser.get("/console/licences").text
        )
        gateway.poll()
        assert served(gateway, erik, "fable-5") == "fable-4"  # no longer licensed: falls back
        again, _ = change(
            browser, "/console/licences", f"/console/licences/{licence}/revoke", reason="again"
        )
        assert again.status_code == 409
        missing = browser.post(
            "/console/licences/99999999999/revoke",
            data={"csrf": browser.csrf("/console/licences"), "reason": "x"},
        )
        assert missing.status_code == 404
    finally:
        viewer.close()
        browser.close()
