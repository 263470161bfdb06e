"""API keys, the mass revocation job and admin tokens in the console, through the running gateway
on SQLite and PostgreSQL.

Keys: a viewer lists an organisation's keys but every change is 403; an operator revokes one
with a reason (the key stops working for the OpenAI SDK; `key.revoke` names the owner by
pseudonym), and again is 409. An organisation's keys, 1,100 of them, are revoked by a job: the
request is a `keys.revoke_org` entry whose index the progress page shows; a second request while
it runs, or one whose count is stale, is 409; the job (run by the real handler, as a runner
claims it) revokes every key in chunks with one `key.revoke` entry each, and its page shows the
count and the closing entry; a real `clearance worker` runs one too, and `clearance keys
revoke-org` queues the same job. A key's expiry and model scope are shown; an operator scopes a
key to a model with a reason (`key.scope`, as `clearance keys scope` writes it: the key is
refused other models) and lifts the scope; a page showing an older scope is 409. Admin tokens:
for admins only; made with scopes and a reason, the secret shown once (in the answer, never a
URL) works against the operator API until revoked.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import openai
import pytest
from typer.testing import CliRunner

from clearance.cli.app import app as cli_app
from clearance.jobs import service as jobs
from clearance.jobs.key_revocation import KeyRevocations
from clearance.jobs.runner import run_job
from clearance.portal import operators
from clearance.principals import service as principals
from clearance.store import reading
from tests.portal.conftest import Outbox, Running
from tests.portal.review_cases import Instance
from tests.portal.test_console import ADMIN, HELLO, OPERATOR, VIEWER, db, done, entry, signed_in

__all__ = ["db"]
ACME = "Acme Corp"
_KEY = re.compile(r'<tr data-key="([^"]+)" data-state="(active|revoked)">')


def key_id(secret: str, db: Instance) -> str:
    with reading(db.engine) as conn:
        return principals.authenticate(conn, secret)[0].id


def test_a_viewer_lists_keys_and_cannot_revoke_one(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    erik = key_id(gateway.key("erik"), db)
    browser, _ = signed_in(gateway, db, outbox, VIEWER, operators.VIEWER)
    try:
        listed = browser.get("/console/keys", params={"org": ACME})
        assert listed.status_code == 200
        assert (erik, "active") in _KEY.findall(listed.text)
        assert "/revoke" not in listed.text  # no form ...
        token = browser.csrf("/console/keys")
        for path, data in (
            (f"/console/keys/{erik}/revoke", {"reason": "viewer tries"}),
            ("/console/keys/revoke-org", {"org": ACME, "count": "1", "reason": "viewer tries"}),
        ):
            assert (
                browser.post(path, data={"csrf": token, **data}).status_code == 403
            )  # ... nor POST
        by_person = browser.get("/console/keys", params={"user": "erik@demo.test"})
        assert [k for k, _ in _KEY.findall(by_person.text)] == [erik]
        unknown = browser.get("/console/keys", params={"org": "No Such Org"})
        assert unknown.status_code == 400 and 'data-field="org"' in unknown.text
        both = browser.get("/console/keys", params={"org": ACME, "user": "erik@demo.test"})
        assert both.status_code == 400
    finally:
        browser.close()
    assert db.entries(action="key.revoke") == []
    gateway.openai(gateway.key("erik")).chat.completions.create(model="fable-4", messages=HELLO)


def test_an_operator_revokes_a_key_with_a_reason(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    secret = gateway.key("alice")
    alice = key_id(secret, db)
    browser, actor = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    page = "/console/keys?user=alice%40demo.test"
    try:
        blank = browser.post(
            f"/console/keys/{alice}/revoke", data={"csrf": browser.csrf(page), "reason": " "}
        )
        assert blank.status_code == 400 and 'data-field="reason"' in blank.text
        answer = browser.post(
            f"/console/keys/{alice}/revoke",
            data={
                "csrf": browser.csrf(page),
                "reason": "leaked in a public repository",
                "back": "user=alice%40demo.test",
            },
        )
        index, action = done(browser, answer)
        assert action == "revoke"
        assert answer.headers["location"].startswith("/console/keys?user=alice%40demo.test&")
        revoked = entry(db, index)
        assert (revoked["action"], revoked["actor"], revoked["target"]) == (
            "key.revoke",
            actor,
            alice,
        )
        assert revoked["details"] == {"reason": "leaked in a public repository"}
        assert revoked["subject"] and "@" not in revoked["subject"]
        gateway.poll()
        with pytest.raises(openai.AuthenticationError):
            gateway.openai(secret).chat.completions.create(model="fable-4", messages=HELLO)
        again = browser.post(
            f"/console/keys/{alice}/revoke", data={"csrf": browser.csrf(page), "reason": "x"}
        )
        assert again.status_code == 409
        missing = browser.post(
            "/console/keys/key_nope/revoke", data={"csrf": browser.csrf(page), "reason": "x"}
        )
        assert missing.status_code == 404
    finally:
        browser.close()


def test_an_organisations_keys_are_revoked_by_a_job_with_progress(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    with db.engine.begin() as conn:
        for n in range(1_100):  # more than two chunks
            principals.create_key(conn, "erik@demo.test", name=f"ci-{n}", allow_fallback=True)
    erik = gateway.key("erik")
    browser, actor = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    other, _ = signed_in(gateway, db, outbox, ADMIN, operators.ADMIN)
    page = f"/console/keys?org={ACME}"
    try:
        listed = browser.get(page)
        count = re.search(r'data-unrevoked="(\d+)"', listed.text)
        assert count and int(count.group(1)) >= 1_101
        total = int(count.group(1))
        stale = browser.post(
            "/console/keys/revoke-org",
            data={"csrf": browser.csrf(page), "org": ACME, "count": "3", "reason": "breach"},
        )
        assert stale.status_code == 409 and db.entries(action="keys.revoke_org") == []
        answer = browser.post(
            "/console/keys/revoke-org",
            data={
                "csrf": browser.csrf(page),
                "org": ACME,
                "count": str(total),
                "reason": "credentials breach at Acme",
            },
        )
        assert answer.status_code == 303
        job_id = int(re.search(r"/jobs/(\d+)\?", answer.headers["location"]).group(1))  # type: ignore[union-attr]
        index, action = done(browser, answer)
        request = entry(db, index)
        assert (action, request["action"], request["actor"]) == (
            "revoke_org",
            "keys.revoke_org",
            actor,
        )
        assert request["details"] == {
            "org": ACME,
            "reason": "credentials breach at Acme",
            "job": job_id,
            "keys": total,
        }
        queued = browser.get(f"/console/jobs/{job_id}")
        assert 'data-state="queued"' in queued.text and 'http-equiv="refresh"' in queued.text
        twice = other.post(
            "/console/keys/revoke-org",
            data={"csrf": other.csrf(page), "org": ACME, "count": str(total), "reason": "me too"},
        )
        assert twice.status_code == 409  # two operators, one job

        # A runner's part, as `clearance worker` claims and runs it.
        job = jobs.claim(db.engine, lease_seconds=60, runner="test", job_id=job_id)
        assert job is not None
        running = browser.get(f"/console/jobs/{job_id}").text
        assert 'data-state="running"' in running and f'data-total="{total}"' in running
        run_job(KeyRevocations(db.engine, db.audit), db.engine, job)
        finished = browser.get(f"/console/jobs/{job_id}").text
        assert 'data-state="done"' in finished and 'http-equiv="refresh"' not in finished
        assert f'data-revoked="{total}"' in finished
        closed = int(re.search(r'id="closed" data-index="(\d+)"', finished).group(1))  # type: ignore[union-attr]
        end = entry(db, closed)
        assert (end["action"], end["details"]["revoked"]) == ("keys.revoke_org.done", total)
        each: list[dict[str, Any]] = db.entries(action="key.revoke")
        assert len(each) == total == len({e["target"] for e in each})
        assert {e["details"]["job"] for e in each} == {job_id}
        assert all(e["actor"] == actor and e["details"]["reason"] for e in each)
        assert 'data-unrevoked="0"' in browser.get(page).text
        gateway.poll()
        with pytest.raises(openai.AuthenticationError):
            gateway.openai(erik).chat.completions.create(model="fable-4", messages=HELLO)
        assert browser.get("/console/jobs/99999").status_code == 404
    finally:
        browser.close()
        other.close()


def test_admins_make_and_revoke_admin_tokens(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    operator, _ = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    try:
        assert operator.get("/console/tokens").status_code == 403
        sneaky = operator.post(
            "/console/tokens",
            data={
                "csrf": operator.csrf("/console/"),
                "name": "x",
                "scope": "catalog:read",
                "days": "1",
                "reason": "x",
            },
        )
        assert sneaky.status_code == 403
    finally:
        operator.close()
    browser, actor = signed_in(gateway, db, outbox, ADMIN, operators.ADMIN)
    page = "/console/tokens"
    try:
        base = {"name": "siem export", "scope": "catalog:read", "days": "30", "reason": "SIEM"}
        for bad, field in (
            ({"name": ""}, "name"),
            ({"scope": "catalog:everything"}, "scope"),
            ({"days": "0"}, "days"),
            ({"days": "many"}, "days"),
            ({"reason": ""}, "reason"),
        ):
            refused = browser.post(page, data={"csrf": browser.csrf(page), **base, **bad})
            assert refused.status_code == 400 and f'data-field="{field}"' in refused.text, bad
        no_scope = {k: v for k, v in base.items() if k != "scope"}
        refused = browser.post(page, data={"csrf": browser.csrf(page), **no_scope})
        assert refused.status_code == 400 and 'data-field="scope"' in refused.text
        assert db.entries(action="admin_token.create") == []

        made = browser.post(
            page,
            data={
                "csrf": browser.csrf(page),
                "name": "siem export",
                "scope": ["catalog:read", "principals:read"],
                "days": "30",
                "reason": "SIEM pulls the catalog nightly",
            },
        )
        assert made.status_code == 200 and "location" not in made.headers
        assert made.headers["cache-control"] == "no-store"
        secret = re.search(r'id="secret-value" value="(clr-admin-[^"]+)"', made.text)
        assert secret
        token_id = re.search(r'id="secret" data-token="([^"]+)"', made.text).group(1)  # type: ignore[union-attr]
        index = int(re.search(r'id="done" data-index="(\d+)"', made.text).group(1))  # type: ignore[union-attr]
        created = entry(db, index)
        assert (created["action"], created["actor"], created["target"]) == (
            "admin_token.create",
            actor,
            token_id,
        )
        assert created["details"] == {
            "name": "siem export",
            "scopes": ["catalog:read", "principals:read"],
            "days": 30,
            "reason": "SIEM pulls the catalog nightly",
        }
        assert secret.group(1) not in str(created)
        listed = browser.get(page).text
        assert f'data-token="{token_id}" data-state="active"' in listed
        assert secret.group(1) not in listed  # shown once
        api = httpx.Client(
            base_url=f"{gateway.url}/admin/api",
            headers={"authorization": f"Bearer {secret.group(1)}"},
        )
        try:
            assert api.get("/upstreams").status_code == 200
            answer = browser.post(
                f"/console/tokens/{token_id}/revoke",
                data={"csrf": browser.csrf(page), "reason": "SIEM retired"},
            )
            index, action = done(browser, answer)
            revoked = entry(db, index)
            assert (action, revoked["action"], revoked["details"]) == (
                "revoke",
                "admin_token.revoke",
                {"reason": "SIEM retired"},
            )
            assert api.get("/upstreams").status_code == 401
        finally:
            api.close()
        again = browser.post(
            f"/console/tokens/{token_id}/revoke",
            data={"csrf": browser.csrf(page), "reason": "again"},
        )
        assert again.status_code == 409
    finally:
        browser.close()


def test_the_cli_queues_the_same_job_and_the_console_follows_it(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    done_cli = gateway.cli("keys", "revoke-org", ACME, "--reason", "contract ended")
    assert done_cli.exit_code == 0, done_cli.output
    found = re.search(r"job (\d+) queued: (\d+) keys of Acme Corp", done_cli.output)
    assert found, done_cli.output
    (request,) = db.entries(action="keys.revoke_org")
    assert request["actor"].startswith("cli:")  # type: ignore[union-attr]
    args = ["keys", "revoke-org", ACME, "--reason", "twice", "--config", str(gateway.config_file)]
    again = CliRunner().invoke(cli_app, args)
    assert again.exit_code != 0 and "being revoked already" in str(again.exception)
    browser, _ = signed_in(gateway, db, outbox, VIEWER, operators.VIEWER)
    try:
        shown = browser.get("/console/keys", params={"org": ACME})
        assert f'id="running">Being revoked now: <a href="/console/jobs/{found.group(1)}"' in (
            shown.text
        )
        progress = browser.get(f"/console/jobs/{found.group(1)}")
        assert 'data-state="queued"' in progress.text
    finally:
        browser.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the worker, not the database
def test_clearance_worker_runs_the_revocation_and_the_page_follows_it(
    gateway: Running,
    db: Instance,
    outbox: Outbox,
    start_worker: Callable[[], subprocess.Popen[bytes]],
) -> None:
    with db.engine.begin() as conn:
        for n in range(600):
            principals.create_key(conn, "erik@demo.test", name=f"ci-{n}", allow_fallback=True)
    browser, _ = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    page = f"/console/keys?org={ACME}"
    try:
        total = re.search(r'data-unrevoked="(\d+)"', browser.get(page).text).group(1)  # type: ignore[union-attr]
        answer = browser.post(
            "/console/keys/revoke-org",
            data={"csrf": browser.csrf(page), "org": ACME, "count": total, "reason": "offboarded"},
        )
        location = answer.headers["location"]
        start_worker()  # a real `clearance worker` claims the job and runs it
        deadline = time.monotonic() + 180
        while 'data-state="done"' not in (shown := browser.get(location).text):
            assert time.monotonic() < deadline, shown
            assert 'data-state="rejected"' not in shown, shown
            time.sleep(0.5)
        assert f'data-revoked="{total}" data-total="{total}"' in shown
        assert len(db.entries(action="key.revoke")) == int(total)
    finally:
        browser.close()


_MODELS = re.compile(r'<tr data-key="([^"]+)" data-state="active">(?:.|\n)*?data-models="([^"]*)"')


def test_a_viewer_sees_expiry_and_scope_and_cannot_scope_a_key(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    with db.engine.begin() as conn:
        scoped, _ = principals.create_key(
            conn,
            "erik@demo.test",
            name="ci",
            allow_fallback=True,
            expires_at=datetime(2099, 1, 2, 3, 4, tzinfo=UTC),
            scope=("fable-4",),
        )
    browser, _ = signed_in(gateway, db, outbox, VIEWER, operators.VIEWER)
    try:
        listed = browser.get("/console/keys", params={"user": "erik@demo.test"}).text
        assert dict(_MODELS.findall(listed))[scoped.id] == "fable-4"
        assert "2099-01-02 03:04" in listed and "every model" in listed
        assert "/scope" not in listed
        answer = browser.post(
            f"/console/keys/{scoped.id}/scope",
            data={
                "csrf": browser.csrf("/console/keys"),
                "models": "",
                "current": "fable-4",
                "reason": "viewer tries",
            },
        )
        assert answer.status_code == 403
    finally:
        browser.close()
    assert db.entries(action="key.scope") == []


def test_an_operator_scopes_a_key_to_a_model_then_lifts_the_scope(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    secret = gateway.key("alice")
    alice = key_id(secret, db)
    browser, actor = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    page = "/console/keys?user=alice%40demo.test"

    def scope(**fields: str) -> httpx.Response:
        data = {"csrf": browser.csrf(page), "back": "user=alice%40demo.test", **fields}
        return browser.post(f"/console/keys/{alice}/scope", data=data)

    try:
        assert dict(_MODELS.findall(browser.get(page).text))[alice] == ""
        for fields, field in (
            ({"models": "fable-4", "current": "", "reason": " "}, "reason"),
            ({"models": "fable-4, gpt-9", "current": "", "reason": "x"}, "models"),
            ({"models": "", "current": "", "reason": "x"}, "models"),  # no change
        ):
            answer = scope(**fields)
            assert answer.status_code == 400 and f'data-field="{field}"' in answer.text

        answer = scope(models="fable-4", current="", reason="CI key: fable-4 only")
        index, action = done(browser, answer)
        assert action == "scope"
        assert answer.headers["location"].startswith("/console/keys?user=alice%40demo.test&")
        scoped = entry(db, index)
        assert (scoped["action"], scoped["actor"], scoped["target"]) == ("key.scope", actor, alice)
        assert scoped["details"] == {"models": ["fable-4"], "reason": "CI key: fable-4 only"}
        assert scoped["subject"] and "@" not in scoped["subject"]
        assert dict(_MODELS.findall(browser.get(page).text))[alice] == "fable-4"
        gateway.poll()
        with pytest.raises(openai.PermissionDeniedError):
            gateway.openai(secret).chat.completions.create(model="mythos-5", messages=HELLO)
        gateway.openai(secret).chat.completions.create(model="fable-4", messages=HELLO)

        stale = scope(models="mythos-5", current="", reason="a tab opened before")
        assert stale.status_code == 409 and len(db.entries(action="key.scope")) == 1

        index, _ = done(browser, scope(models="", current="fable-4", reason="every model again"))
        assert entry(db, index)["details"] == {"models": None, "reason": "every model again"}
        gateway.poll()
        gateway.openai(secret).chat.completions.create(model="mythos-5", messages=HELLO)
        with db.engine.begin() as conn:
            principals.revoke_key(conn, alice)
        revoked = scope(models="fable-4", current="", reason="x")
        assert revoked.status_code == 409
        missing = browser.post(
            "/console/keys/key_nope/scope",
            data={"csrf": browser.csrf(page), "models": "", "current": "", "reason": "x"},
        )
        assert missing.status_code == 404
    finally:
        browser.close()
