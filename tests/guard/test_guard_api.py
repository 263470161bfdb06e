"""The guard review queue in the operator API (admin/guard_routes.py), on SQLite and PostgreSQL:
tokens and scopes, the same shapes as `clearance guard ... --json`, the audited view first."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from clearance.admin import tokens
from clearance.admin.routes import admin_app
from clearance.admin.tokens import Scope
from clearance.audit.service import AuditLog
from clearance.cli.app import app
from clearance.config import Settings
from clearance.store import connect
from tests.guard.test_guard_cli import actions, held
from tests.identity.test_cli import add_user, make_instance

Fixture = tuple[TestClient, dict[str, str], Path, Settings]


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Fixture]:
    settings, config = make_instance(tmp_path / "i", db_url)
    add_user(settings, "anna@example.com", "Anna")
    add_user(settings, "bert@example.com", "Bert")
    engine = connect(settings.database_url)
    log = AuditLog(engine, settings.audit)
    secrets = {}
    with engine.begin() as conn:
        for name, scopes in {
            "reader": {Scope.REVIEW_READ},
            "reviewer": {Scope.REVIEW_READ, Scope.REVIEW_WRITE},
            "people": {Scope.PRINCIPALS_READ},
        }.items():
            _, secrets[name] = tokens.create(conn, name, frozenset(scopes), created_by="test")
    try:
        with TestClient(admin_app(settings, engine, log)) as client:
            yield client, secrets, config, settings
    finally:
        log.close()
        engine.dispose()


def auth(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def test_cases_open_decide_and_flags(api: Fixture) -> None:
    client, secrets, config, settings = api
    anna = held(settings, "anna@example.com")
    bert = held(settings, "bert@example.com")
    reader, reviewer = auth(secrets["reader"]), auth(secrets["reviewer"])

    listed = client.get("/guard/cases", headers=reader)
    assert listed.status_code == 200, listed.text
    assert listed.headers["cache-control"] == "no-store"
    cli = CliRunner().invoke(app, ["guard", "cases", "--json", "-c", str(config)])
    assert listed.json() == {"cases": json.loads(cli.output)}
    assert [c["case"] for c in listed.json()["cases"]] == [anna, bert]
    assert client.get("/guard/cases?status=nope", headers=reader).status_code == 400
    assert client.get("/guard/cases?other=1", headers=reader).status_code == 400

    # Opening decrypts evidence: review:write, like deciding; review:read never sees excerpts.
    assert client.get(f"/guard/cases/{anna}", headers=reader).status_code == 403
    assert not [e for e in actions(settings) if e.get("action") == "usage.review.view"]
    opened = client.get(f"/guard/cases/{anna}", headers=reviewer)
    assert opened.status_code == 200, opened.text
    assert [f["excerpt"] for f in opened.json()["flags"]] == ["excerpt 0", "excerpt 1", "excerpt 2"]
    (view,) = [e for e in actions(settings) if e.get("action") == "usage.review.view"]
    assert str(view["actor"]).startswith("admin-token:")
    assert client.get("/guard/cases/99999", headers=reviewer).status_code == 404
    assert client.get("/guard/cases/x1", headers=reviewer).status_code == 404

    clear = f"/guard/cases/{anna}/clear"
    assert client.post(clear, json={}, headers=reviewer).status_code == 400
    assert client.post(clear, json={"reason": "ok"}, headers=reader).status_code == 403
    done = client.post(clear, json={"reason": "pen-tester"}, headers=reviewer)
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["status"], body["reason"], body["decided_by"]) == (
        "cleared",
        "pen-tester",
        view["actor"],
    )
    entry = actions(settings)[body["audit_index"]]
    assert (entry["action"], entry["target"]) == ("usage.review.clear", f"guard_case:{anna}")
    again = client.post(f"/guard/cases/{anna}/confirm", json={"reason": "x"}, headers=reviewer)
    assert again.status_code == 409
    confirmed = client.post(f"/guard/cases/{bert}/confirm", json={"reason": "r"}, headers=reviewer)
    assert confirmed.json()["status"] == "confirmed"

    subject = listed.json()["cases"][1]["subject"]
    people = auth(secrets["people"])
    assert client.get(f"/users/{subject}/guard-flags", headers=reviewer).status_code == 403
    flags = client.get(f"/users/{subject}/guard-flags", headers=people)
    assert flags.status_code == 200, flags.text
    cli_flags = CliRunner().invoke(
        app, ["guard", "flags", "bert@example.com", "--json", "-c", str(config)]
    )
    assert flags.json() == json.loads(cli_flags.output)
    assert flags.json()["usage_hold"] == "confirmed" and len(flags.json()["flags"]) == 3
    assert "excerpt" not in json.dumps(flags.json()["flags"])
    (looked,) = [e for e in actions(settings) if e.get("action") == "usage.flags.view"]
    assert looked["subject"] == subject and "bert@example.com" not in json.dumps(looked)
    assert client.get("/users/sub_nobody/guard-flags", headers=people).status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/guard/cases"),
        ("get", "/guard/cases/1"),
        ("post", "/guard/cases/1/clear"),
        ("post", "/guard/cases/1/confirm"),
        ("get", "/users/sub_x/guard-flags"),
    ],
)
def test_every_route_needs_a_token(api: Fixture, method: str, path: str) -> None:
    client = api[0]
    for headers in ({}, auth("clr-admin-not-a-token")):
        answer = client.request(method, path, headers=headers, json={"reason": "x"})
        assert answer.status_code == 401, (path, answer.text)
        assert answer.headers["www-authenticate"].startswith("Bearer")
