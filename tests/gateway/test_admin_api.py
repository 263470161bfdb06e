"""The operator API (/admin/api): only a scoped admin token opens it; every change and every look
at a person's record is an audit entry naming the token (issue 7, item 6; DESIGN.md interfaces)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import openai
import orjson
import pytest
import sqlalchemy as sa

from clearance.admin import tokens
from clearance.admin.tokens import Scope
from clearance.audit.service import AuditLog
from clearance.errors import InvalidToken
from clearance.identity import service as identity
from clearance.identity.models import VerificationMethod
from clearance.identity.vault import EvidenceVault
from clearance.principals import service as principals
from clearance.store import connect
from clearance.store.tables import admin_tokens
from tests.identity.test_service import examination, us_passport

from .conftest import Running


def make_token(gateway: Running, *scopes: Scope, days: int | None = 90) -> tuple[str, str]:
    engine = connect(gateway.settings.database_url)
    try:
        with engine.begin() as conn:
            token, secret = tokens.create(
                conn, "test", frozenset(scopes), created_by="test", expires_in_days=days
            )
    finally:
        engine.dispose()
    return token.id, secret


@pytest.fixture
def admin(gateway: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url + "/admin/api", timeout=30) as client:
        yield client


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def audit_entry(gateway: Running, index: int) -> dict[str, object]:
    response = httpx.get(f"{gateway.url}/audit/entries/{index}", timeout=10)
    assert response.status_code == 200
    entry = orjson.loads(response.content)
    assert isinstance(entry, dict)
    return entry


def test_without_a_valid_admin_token_nothing_opens(gateway: Running, admin: httpx.Client) -> None:
    token_id, secret = make_token(gateway, *Scope)
    refused = [
        admin.get("/models"),
        admin.get("/models", headers=bearer("clr-admin-not-a-real-token")),
        # A user's API key is not an admin token, however valid.
        admin.get("/models", headers=bearer(gateway.key("alice"))),
        admin.get("/models", headers={"x-api-key": secret}),
        # Secrets in URLs end up in logs and histories: a query string is never read.
        admin.get("/models", params={"token": secret, "access_token": secret}),
        admin.get("/models", headers={"authorization": f"Basic {secret}"}),
    ]
    for response in refused:
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"]["code"] == "invalid_token"
        assert secret not in response.text
    assert admin.get("/models", headers=bearer(secret)).status_code == 200
    gateway.cli("admin", "tokens", "revoke", token_id)
    assert admin.get("/models", headers=bearer(secret)).status_code == 401


def test_a_token_opens_only_its_scopes(gateway: Running, admin: httpx.Client) -> None:
    _, reader = make_token(gateway, Scope.CATALOG_READ)
    me = admin.get("/whoami", headers=bearer(reader)).json()
    assert me["scopes"] == ["catalog:read"]
    listed = admin.get("/models", headers=bearer(reader))
    assert listed.status_code == 200 and listed.headers["cache-control"] == "no-store"
    assert {m["id"] for m in listed.json()["models"]} >= {"fable-4", "fable-5", "mythos-5"}
    denied = admin.post(
        "/models/fable-5/suspend", json={"reason": "not mine"}, headers=bearer(reader)
    )
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]
    for path in ("/review", "/users/whoever"):
        assert admin.get(path, headers=bearer(reader)).status_code == 403
    assert (
        admin.post("/users/lookup", json={"email": "x"}, headers=bearer(reader)).status_code == 403
    )


def test_an_expired_token_is_refused(gateway: Running) -> None:
    engine = connect(gateway.settings.database_url)
    try:
        with engine.begin() as conn:
            token, secret = tokens.create(
                conn, "short", frozenset({Scope.CATALOG_READ}), created_by="t", expires_in_days=1
            )
            assert tokens.authenticate(conn, secret).id == token.id
            later = datetime.now(UTC) + timedelta(days=2)
            with pytest.raises(InvalidToken):
                tokens.authenticate(conn, secret, now=later)
            stored = conn.execute(sa.select(admin_tokens.c.token_hash)).scalars().all()
    finally:
        engine.dispose()
    assert secret not in stored and tokens.token_hash(secret) in stored


def test_kill_switch_over_the_api_is_recorded_and_stops_traffic(
    gateway: Running, admin: httpx.Client
) -> None:
    token_id, secret = make_token(gateway, Scope.CATALOG_WRITE)
    client = gateway.openai(gateway.strict_key("alice"))  # no fallback: a suspension refuses
    ask = {"messages": [{"role": "user", "content": "hi"}]}
    client.chat.completions.create(model="fable-5", **ask)  # type: ignore[call-overload]

    assert admin.post("/models/fable-5/suspend", json={}, headers=bearer(secret)).status_code == 400
    done = admin.post(
        "/models/fable-5/suspend", json={"reason": "incident 42"}, headers=bearer(secret)
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "suspended"
    entry = audit_entry(gateway, done.json()["audit_index"])
    assert (entry["actor"], entry["action"], entry["target"]) == (
        f"admin-token:{token_id}",
        "model.suspend",
        "fable-5",
    )
    deadline = time.monotonic() + 5
    while True:  # every worker picks the change up within a second (the version poll)
        try:
            client.chat.completions.create(model="fable-5", **ask)  # type: ignore[call-overload]
        except openai.APIStatusError as exc:
            assert exc.status_code in (451, 503)
            break
        assert time.monotonic() < deadline, "the suspension never took effect"
        time.sleep(0.1)
    resumed = admin.post("/models/fable-5/resume", headers=bearer(secret))
    assert resumed.status_code == 200 and resumed.json()["status"] == "active"
    assert admin.post("/models/nope/resume", headers=bearer(secret)).status_code == 404


def test_looking_a_person_up_is_audited_and_a_stolen_key_is_revoked(
    gateway: Running, admin: httpx.Client
) -> None:
    token_id, secret = make_token(gateway, Scope.PRINCIPALS_READ, Scope.PRINCIPALS_WRITE)
    found = admin.post("/users/lookup", json={"email": "alice@demo.test"}, headers=bearer(secret))
    assert found.status_code == 200, found.text
    alice = found.json()
    assert alice["identity"]["us_person"] == "citizen" and alice["screening"] == "clear"
    assert all("hash" not in k for k in alice["keys"])
    by_subject = admin.get(f"/users/{alice['subject_id']}", headers=bearer(secret))
    assert by_subject.json()["email"] == "alice@demo.test"
    missing = admin.post("/users/lookup", json={"email": "nobody@x.y"}, headers=bearer(secret))
    assert missing.status_code == 404

    key = gateway.key("alice")
    key_id = next(k["id"] for k in alice["keys"] if key.endswith(k["hint"]))
    other = admin.post("/users/lookup", json={"email": "sven@demo.test"}, headers=bearer(secret))
    # A key is revoked only through its owner's record.
    wrong = admin.post(
        f"/users/{other.json()['subject_id']}/keys/{key_id}/revoke", headers=bearer(secret)
    )
    assert wrong.status_code == 404
    revoked = admin.post(
        f"/users/{alice['subject_id']}/keys/{key_id}/revoke", headers=bearer(secret)
    )
    assert revoked.status_code == 200, revoked.text
    entry = audit_entry(gateway, revoked.json()["audit_index"])
    assert (entry["actor"], entry["action"], entry["subject"]) == (
        f"admin-token:{token_id}",
        "key.revoke",
        alice["subject_id"],
    )
    assert "alice@demo.test" not in orjson.dumps(entry).decode()
    client = gateway.openai(key)
    deadline = time.monotonic() + 5
    while True:
        try:
            client.models.list()
        except openai.AuthenticationError:
            break
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.1)


def test_review_queue_over_the_api(gateway: Running, admin: httpx.Client) -> None:
    settings = gateway.settings
    engine = connect(settings.database_url)
    vault = EvidenceVault.open(settings.identity)
    log = AuditLog(engine, settings.audit)
    try:
        with engine.begin() as conn:
            user = principals.get_user(conn, "nina@demo.test")
        case = identity.verify_document(
            engine,
            vault,
            log,
            user.id,
            examination(us_passport(), live=False),
            method=VerificationMethod.REMOTE,
            max_age_days=365,
        )
    finally:
        log.close()
        engine.dispose()
    token_id, secret = make_token(gateway, Scope.REVIEW_READ, Scope.REVIEW_WRITE)
    queue = admin.get("/review", headers=bearer(secret)).json()["cases"]
    assert [c["case"] for c in queue] == [case.id]
    shown = admin.get(f"/review/{case.id}", headers=bearer(secret)).json()
    assert shown["status"] == "review" and "liveness_missing" in shown["reasons"]
    for missing in ("999999", "99999999999", "-1", "1e3"):
        assert admin.get(f"/review/{missing}", headers=bearer(secret)).status_code == 404
    no_note = admin.post(
        f"/review/{case.id}/decide", json={"outcome": "verified"}, headers=bearer(secret)
    )
    assert no_note.status_code == 400
    decided = admin.post(
        f"/review/{case.id}/decide",
        json={"outcome": "verified", "note": "liveness done on a video call"},
        headers=bearer(secret),
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "verified"
    entry = audit_entry(gateway, decided.json()["audit_index"])
    assert (entry["type"], entry["reviewer"]) == ("identity_decision", f"admin-token:{token_id}")
    again = admin.post(
        f"/review/{case.id}/decide",
        json={"outcome": "rejected", "note": "changed my mind"},
        headers=bearer(secret),
    )
    assert again.status_code == 409
    assert admin.get("/review", headers=bearer(secret)).json()["cases"] == []


def test_malformed_bodies_are_clean_4xx(gateway: Running, admin: httpx.Client) -> None:
    _, secret = make_token(gateway, *Scope)
    for body in (b"", b"[1]", b"{", b'{"reason": 5}', b"\xff\xfe"):
        response = admin.post("/models/fable-4/suspend", content=body, headers=bearer(secret))
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
    huge = b'{"reason": "' + b"x" * 100_000 + b'"}'
    assert (
        admin.post("/models/fable-4/suspend", content=huge, headers=bearer(secret)).status_code
        == 413
    )
    assert admin.get("/no/such/route", headers=bearer(secret)).status_code == 404
    # Dot segments can walk a request out of /admin/api: still a JSON 404, never a text page.
    walked = admin.post("/models/../../suspend", json={"reason": "x"}, headers=bearer(secret))
    assert walked.request.url.path == "/admin/suspend"
    assert walked.status_code == 404 and walked.json()["error"]["code"] == "not_found"
    assert admin.get("/models/fable-4/suspend", headers=bearer(secret)).status_code == 405


def test_cli_creates_lists_and_revokes_tokens(gateway: Running, admin: httpx.Client) -> None:
    made = gateway.cli(
        "admin", "tokens", "create", "ops-laptop", "--scope", "catalog:read", "--expires-days", "7"
    )
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith(tokens.PREFIX)
    assert admin.get("/models", headers=bearer(secret)).status_code == 200
    listed = orjson.loads(gateway.cli("admin", "tokens", "list", "--json").stdout)
    row = next(t for t in listed if t["name"] == "ops-laptop")
    assert row["scopes"] == ["catalog:read"] and not row["revoked"]
    assert secret not in gateway.cli("admin", "tokens", "list").stdout
    gateway.cli("admin", "tokens", "revoke", row["id"])
    assert admin.get("/models", headers=bearer(secret)).status_code == 401
