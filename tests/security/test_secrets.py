"""Secrets and personal data (issue 7, item 5): after every demo persona has used every API
surface with prompts carrying a marker, no API key, email, name or prompt text is in the audit
log, the logs or the requests the provider received; keys are stored only as hashes; a key in
the URL query string is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from clearance.audit.reader import LogReader
from clearance.demo.run import PERSONAS
from clearance.demo.upstream import DemoUpstream
from clearance.principals.keys import key_hash
from clearance.store import connect
from clearance.store.tables import api_keys
from tests.security.conftest import Running

MARKER = "zq-PROMPT-MARKER-7f3a9c"
MODELS = ("fable-4", "fable-5", "mythos-5")
CLIENT_LOGGERS = ("httpx", "httpcore")


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record at DEBUG and up, uvicorn's too (its loggers do not propagate to the root
    logger), and SQLAlchemy's statements with their bound parameters (INFO; it sets itself to
    WARNING). Not SQLAlchemy's DEBUG: that dumps every result row, users' emails and names
    included, so it must never be switched on in production (docs/security.md)."""
    caplog.set_level(logging.DEBUG)
    for name in ("uvicorn", "uvicorn.error", "aiohttp", "clearance"):
        caplog.set_level(logging.DEBUG, logger=name)
    caplog.set_level(logging.INFO, logger="sqlalchemy")
    unpropagated = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.access")]
    for logger in unpropagated:
        logger.addHandler(caplog.handler)
    yield caplog
    for logger in unpropagated:
        logger.removeHandler(caplog.handler)


def _use_every_surface(http: httpx.Client, key: str, who: str) -> set[int]:
    """One persona's traffic: each model on each surface, streamed and not; returns statuses."""
    prompt = f"{MARKER} I am {who}; my email is {who}@demo.test"
    openai_auth = {"authorization": f"Bearer {key}"}
    anthropic_auth = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    chat = [{"role": "user", "content": prompt}]
    statuses = set()
    for model in MODELS:
        for stream in (False, True):
            body = {"model": model, "messages": chat, "stream": stream, "user": prompt}
            statuses.add(
                http.post("/v1/chat/completions", json=body, headers=openai_auth).status_code
            )
            body = {"model": model, "messages": chat, "max_tokens": 20, "stream": stream}
            body["metadata"] = {"user_id": prompt}
            statuses.add(http.post("/v1/messages", json=body, headers=anthropic_auth).status_code)
        body = {"model": model, "input": prompt, "instructions": prompt}
        statuses.add(http.post("/v1/responses", json=body, headers=openai_auth).status_code)
        body = {"model": model, "input": [prompt]}
        statuses.add(http.post("/v1/embeddings", json=body, headers=openai_auth).status_code)
        body = {"model": model, "messages": chat, "system": prompt}
        statuses.add(
            http.post("/v1/messages/count_tokens", json=body, headers=anthropic_auth).status_code
        )
    statuses.add(http.get("/v1/models", headers=openai_auth).status_code)
    statuses.add(http.get("/v1/models", headers=anthropic_auth).status_code)
    return statuses


def _secrets(gateway: Running) -> dict[str, str]:
    """What must never be found, by a label safe to print."""
    found = {"prompt marker": MARKER}
    for p in PERSONAS:
        found[f"{p.email} key"] = gateway.keys[p.email]
        found[f"{p.email} key body"] = gateway.keys[p.email].removeprefix("sk-clr-")[:24]
        found[f"{p.email} email"] = p.email
        found[f"{p.email} local part"] = p.email.split("@")[0] + "@"
        found[f"{p.email} name"] = p.name
        if len(p.name.split()[-1]) >= 5:  # shorter ones occur by chance in random ids
            found[f"{p.email} surname"] = p.name.split()[-1]
    return found


def _leaks(haystack: str, secrets: dict[str, str]) -> list[str]:
    lowered = haystack.lower()
    return [label for label, value in secrets.items() if value.lower() in lowered]


def test_no_key_or_personal_data_in_audit_log_logs_or_upstream(
    gateway: Running,
    demo_upstream: tuple[DemoUpstream, str],
    captured: pytest.LogCaptureFixture,
) -> None:
    statuses: set[int] = set()
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        for persona in PERSONAS:
            who = persona.email.split("@")[0]
            statuses |= _use_every_surface(http, gateway.keys[persona.email], who)
            # A refused request is recorded too: with the key in the URL, and a wrong key.
            url_key = http.get(f"/v1/models?api_key={gateway.keys[persona.email]}")
            statuses.add(url_key.status_code)
            wrong = {"authorization": f"Bearer {gateway.keys[persona.email]}x"}
            statuses.add(http.get("/v1/models", headers=wrong).status_code)
    assert {200, 401}.issubset(statuses), statuses  # the run exercised served and refused paths

    secrets = _secrets(gateway)
    engine = connect(gateway.settings.database_url)
    try:
        reader = LogReader(engine)
        committed, _ = reader.sizes()
        entries = reader.entries(0, committed)
    finally:
        engine.dispose()
    assert len(entries) == committed > len(PERSONAS) * 20
    leaks = {i: found for i, e in enumerate(entries) if (found := _leaks(e.decode(), secrets))}
    assert leaks == {}, f"audit entries hold personal data or secrets: {leaks}"

    # The server's records (the gateway, uvicorn, aiohttp, SQLAlchemy ...), not the test's own
    # HTTP client, which logs the URLs it was told to request.
    server = [r for r in captured.records if not r.name.startswith(CLIENT_LOGGERS)]
    assert any(r.name.startswith("sqlalchemy.engine") for r in server), "SQL was not captured"
    logs = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in server)
    assert _leaks(logs, secrets) == []

    # What the provider saw: the prompt of course, but no key, and no client-chosen identity.
    upstream, _ = demo_upstream
    assert upstream.seen, "nothing was forwarded"
    keys_only = {k: v for k, v in secrets.items() if k.endswith(("key", "key body"))}
    for seen in upstream.seen:
        sent = str(seen.headers) + seen.body.decode("utf-8", "replace")
        assert _leaks(sent, keys_only) == [], seen.path
        assert f'"user_id":"{MARKER}' not in seen.body.decode()  # replaced by the pseudonym
        assert '"user":' not in seen.body.decode()  # a client-chosen OpenAI `user` is dropped


def test_keys_are_stored_only_as_hashes(gateway: Running) -> None:
    engine = connect(gateway.settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(api_keys)).mappings().all()
    finally:
        engine.dispose()
    stored = {r["key_hash"] for r in rows}
    for secret in gateway.keys.values():
        assert key_hash(secret) in stored
        for row in rows:
            assert all(secret not in str(value) for value in row.values())
            assert len(row["hint"]) <= 4  # the last characters only, to tell keys apart
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in stored)  # SHA-256, hex


@pytest.mark.parametrize(
    "query",
    [
        "api_key={key}",
        "key={key}",
        "x-api-key={key}",
        "access_token={key}",
        "Authorization=Bearer%20{key}",
    ],
)
def test_a_key_in_the_url_query_string_is_refused(gateway: Running, query: str) -> None:
    key = gateway.key("alice")
    body = {"model": "fable-4", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        # Alone, the key in the URL authenticates nobody ...
        for response in (
            http.get(f"/v1/models?{query.format(key=key)}"),
            http.post(f"/v1/chat/completions?{query.format(key=key)}", json=body),
        ):
            assert response.status_code == 401, response.text
            assert response.json()["error"]["type"] == "authentication_error"
        # ... and beside a valid header it is refused too, so it is never sent at all.
        if "key=" in query:
            sent = http.get(
                f"/v1/models?{query.format(key=key)}", headers={"authorization": f"Bearer {key}"}
            )
            assert sent.status_code == 401
        assert http.get("/v1/models", headers={"authorization": f"Bearer {key}"}).status_code == 200


def test_a_client_chosen_model_name_does_not_reach_the_audit_log(gateway: Running) -> None:
    body = {"model": f"{MARKER} alice@demo.test", "messages": [{"role": "user", "content": "x"}]}
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        refused = http.post(
            "/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {gateway.key('alice')}"},
        )
    assert refused.status_code == 404
    engine = connect(gateway.settings.database_url)
    try:
        reader = LogReader(engine)
        entries = reader.entries(0, reader.sizes()[1])  # every committed entry
    finally:
        engine.dispose()
    assert not any(MARKER.encode() in e for e in entries)
