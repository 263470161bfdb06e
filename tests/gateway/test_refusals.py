"""Refusals before authentication are counted, not appended one by one; a client that keeps
sending bad keys gets 429; everything after authentication keeps an entry of its own."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from clearance.app import create_app
from clearance.audit.reader import LogReader
from clearance.config import Settings
from clearance.demo.run import seed
from clearance.net.protocol import DeadlineProtocol
from clearance.net.serving import serve_in_thread
from clearance.principals.service import create_key, revoke_key
from clearance.store import connect, migrate

from .conftest import Running, audit_writes_blocked

HELLO = [{"role": "user", "content": "hi"}]
CHAT = {"model": "fable-4", "messages": HELLO}
MESSAGE = {"model": "fable-4", "max_tokens": 8, "messages": HELLO}


def _entries(settings: Settings) -> list[dict[str, Any]]:
    engine = connect(settings.database_url)
    try:
        reader = LogReader(engine)
        committed, _ = reader.sizes()
        return [orjson.loads(e) for e in reader.entries(0, committed)]
    finally:
        engine.dispose()


def _tuned(settings: Settings, **gateway: Any) -> Settings:
    return replace(settings, gateway=replace(settings.gateway, **gateway))


@contextlib.contextmanager
def _serving(
    instance: tuple[Settings, Path], upstream_url: str, **gateway: Any
) -> Iterator[tuple[str, dict[str, str], Settings]]:
    """A gateway with these [gateway] settings; leaving the block is a graceful stop."""
    settings = _tuned(instance[0], **gateway)
    engine = connect(settings.database_url)
    migrate(engine)
    keys = seed(engine, settings, upstream_url)
    engine.dispose()
    with serve_in_thread(create_app(settings), http=DeadlineProtocol) as url:
        yield url, keys, settings


def _revoked_key(settings: Settings) -> str:
    engine = connect(settings.database_url)
    try:
        with engine.begin() as conn:
            key, secret = create_key(conn, "nina@demo.test", name="old", allow_fallback=True)
            revoke_key(conn, key.id)
    finally:
        engine.dispose()
    return secret


async def _hammer(url: str, revoked: str, total: int) -> Counter[tuple[str, int]]:
    """`total` requests without a valid key, of every kind, on both surfaces, over 8 keep-alive
    connections of plain HTTP/1.1 (an SDK per request would cost the test more than the gateway)."""
    body, message = orjson.dumps(CHAT), orjson.dumps(MESSAGE)
    kinds = [
        ("POST", "/v1/chat/completions", "", body),  # no key at all
        ("POST", "/v1/chat/completions", "authorization: Bearer sk-clr-guess\r\n", body),
        ("POST", "/v1/messages", "x-api-key: sk-clr-guess-2\r\n", message),
        ("POST", "/v1/chat/completions", f"authorization: Bearer {revoked}\r\n", body),
        ("POST", "/v1/chat/completions?key=sk-clr-in-the-url", "", body),
        ("GET", "/v1/models", "authorization: Bearer sk-clr-guess-3\r\n", b""),
    ]
    host, port = url.removeprefix("http://").split(":")
    seen: Counter[tuple[str, int]] = Counter()

    async def connection(numbers: range) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for n in numbers:
                method, path, auth, payload = kinds[n % len(kinds)]
                head = (
                    f"{method} {path} HTTP/1.1\r\nhost: {host}\r\n{auth}"
                    f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n\r\n"
                )
                writer.write(head.encode() + payload)
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) != b"\r\n":
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                surface = "anthropic" if path == "/v1/messages" else "openai"
                seen[(surface, int(status_line.split()[1]))] += 1
        finally:
            writer.close()
            await writer.wait_closed()

    await asyncio.gather(*(connection(range(c, total, 8)) for c in range(8)))
    return seen


def test_2000_bad_keys_leave_a_handful_of_summaries_that_add_up(
    instance: tuple[Settings, Path], upstream_url: str
) -> None:
    total, limit = 2000, 600
    tuning = {
        "bad_keys_per_client": limit,
        "refusal_summary_seconds": 3600,
        "bad_key_delay_seconds": 0,
    }
    with _serving(instance, upstream_url, **tuning) as (url, _, settings):
        revoked = _revoked_key(settings)
        before = len(_entries(settings))
        seen = asyncio.run(_hammer(url, revoked, total))
        during = _entries(settings)[before:]
        # Nothing appended per request (the gateway's own start-up record may land meanwhile).
        assert [e for e in during if e["type"] != "admin_action"] == [], during
    # The graceful stop flushed the last interval.
    new = _entries(settings)[before:]
    summaries = [e for e in new if e["type"] == "refusal_summary"]
    assert [e for e in new if e["type"] == "access_decision"] == []
    assert sum(s["count"] for s in summaries) == total
    assert 5 <= len(summaries) <= 16, summaries  # per reason, surface (and interval)
    by_status: Counter[tuple[str, int]] = Counter()
    for s in summaries:
        by_status[(s["surface"], s["status"])] += s["count"]
        assert s["schema"] == 3 and s["interval"] == 3600
        assert s["first"] <= s["last"]
        assert s["client_network"].startswith("hmac-sha256:")
        assert "127.0.0" not in orjson.dumps(s).decode()
    assert by_status == seen  # what the clients saw, status by status
    # Requests already past the check when the limit was reached still get their 401.
    unauthorized = seen[("openai", 401)] + seen[("anthropic", 401)]
    assert limit <= unauthorized < limit + 16 and seen[("openai", 429)] > 0
    reasons = {s["reason"] for s in summaries}
    assert reasons == {
        "missing_api_key",
        "invalid_api_key",
        "revoked_api_key",
        "key_in_url",
        "too_many_bad_keys",
    }
    assert len({s["client_network"] for s in summaries}) == 1  # one client, one network


def test_a_client_over_its_limit_gets_429_in_its_sdks_shape(
    instance: tuple[Settings, Path], upstream_url: str
) -> None:
    limit = 5
    with _serving(instance, upstream_url, bad_keys_per_client=limit) as (url, keys, _):
        good = openai.OpenAI(base_url=url + "/v1", api_key=keys["alice@demo.test"], max_retries=0)
        good.chat.completions.create(**CHAT)  # alice's key is now held in memory
        guess = openai.OpenAI(base_url=url + "/v1", api_key="sk-clr-guess", max_retries=0)
        for _ in range(limit):
            with pytest.raises(openai.AuthenticationError):
                guess.chat.completions.create(**CHAT)
        with pytest.raises(openai.RateLimitError) as limited:
            guess.chat.completions.create(**CHAT)
        response = limited.value.response
        assert response.json()["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(response.headers["retry-after"]) <= 60
        claude = anthropic.Anthropic(base_url=url, api_key="sk-ant-guess", max_retries=0)
        with pytest.raises(anthropic.RateLimitError) as claude_limited:
            claude.messages.create(**MESSAGE)
        assert claude_limited.value.response.json()["error"]["type"] == "rate_limit_error"
        # A key already known to be good is served from the same address; a key the worker has
        # not seen waits out the window like any other (no database read for this client).
        assert good.chat.completions.create(**CHAT).choices[0].message.content
        fresh = openai.OpenAI(base_url=url + "/v1", api_key=keys["dana@demo.test"], max_retries=0)
        with pytest.raises(openai.RateLimitError):
            fresh.chat.completions.create(**CHAT)
        for client in (good, guess, fresh):
            client.close()
        claude.close()


def test_a_bad_key_is_answered_without_waiting_for_the_log(gateway: Running) -> None:
    alice = gateway.openai(gateway.key("alice"))
    alice.models.list()  # alice's key in memory: her request below needs no database read
    waiting: dict[str, object] = {}

    def served() -> None:
        waiting["reply"] = alice.chat.completions.create(**CHAT)

    with audit_writes_blocked(gateway.settings):
        decided = threading.Thread(target=served)
        decided.start()
        with httpx.Client(base_url=gateway.url, timeout=20) as http:
            r = http.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 401  # answered while no append can complete
        assert "reply" not in waiting  # the authenticated request waits for its record
    decided.join(timeout=30)
    assert "reply" in waiting


def test_typed_entries_say_what_happened(gateway: Running) -> None:
    """Denied, fallback, allowed, rejected and upstream-failed requests, read from their typed
    fields alone."""
    gateway.cli(
        "upstreams", "add", "dead", "--kind", "openai", "--base-url", "http://127.0.0.1:9/v1"
    )
    gateway.cli("models", "add", "dead-model", "--upstream", "dead", "--training-compute", "1e20")
    gateway.poll()
    strict = gateway.openai(gateway.strict_key("sven"))
    with pytest.raises(openai.APIStatusError) as denied:
        strict.chat.completions.create(model="mythos-5", messages=HELLO)
    fallback = gateway.openai(gateway.key("sven")).chat.completions.with_raw_response.create(
        model="mythos-5", messages=HELLO
    )
    alice = gateway.openai(gateway.key("alice"))
    allowed = alice.chat.completions.with_raw_response.create(
        model="mythos-5", messages=HELLO, stream=True
    )
    allowed.parse().close()
    with pytest.raises(openai.NotFoundError):
        alice.chat.completions.create(model="no-such-model", messages=HELLO)
    with pytest.raises(openai.InternalServerError) as failed:
        alice.chat.completions.create(model="dead-model", messages=HELLO)
    claude = gateway.anthropic(gateway.key("alice")).messages.with_raw_response.create(**MESSAGE)

    def at(response: httpx.Response) -> dict[str, Any]:
        index = int(response.headers["clearance-audit-index"])
        return _entries(gateway.settings)[index]

    entries = _entries(gateway.settings)
    d = at(denied.value.response)
    assert (d["outcome"], d["status"], d["effect"], d["reason"]) == (
        "denied",
        451,
        "deny",
        "controlled-foreign-person",
    )
    assert (d["surface"], d["endpoint"], d["stream"], d["schema"]) == (
        "openai",
        "/v1/chat/completions",
        False,
        3,
    )
    f = at(fallback.http_response)
    assert (f["outcome"], f["effect"], f["model_served"], f["status"]) == (
        "forwarding",
        "fallback",
        "fable-4",
        None,
    )
    assert f["reason"] == "controlled-foreign-person"
    a = at(allowed.http_response)
    assert (a["outcome"], a["effect"], a["reason"], a["stream"]) == (
        "forwarding",
        "allow",
        None,
        True,
    )
    assert a["facts_version"] and a["facts_digest"].startswith("sha256:")
    rejected = [e for e in entries if e.get("outcome") == "rejected"]
    assert [(e["status"], e["reason"], e["effect"]) for e in rejected] == [
        (404, "not_found", "error")
    ]
    decision_index = int(failed.value.response.headers["clearance-audit-index"])
    outcome = next(e for e in entries if e.get("decision_index") == decision_index)
    assert (outcome["outcome"], outcome["status"], outcome["reason"]) == (
        "failed",
        502,
        "upstream_error",
    )
    c = at(claude.http_response)
    assert (c["surface"], c["endpoint"]) == ("anthropic", "/v1/messages")
    assert all("anonymous" not in orjson.dumps(e).decode() for e in entries)
    # The auditor's question, asked of typed fields: every 451 for this person.
    assert gateway.app is not None
    gateway.app.audit.integrate()  # the query reads what is in the tree: integrate now
    query = gateway.cli("audit", "query", "--status", "451", "--subject", d["subject"])
    found = [orjson.loads(line) for line in query.output.splitlines()]
    assert [r["entry"]["reason"] for r in found] == ["controlled-foreign-person"]
    rule = found[0]["entry"]["rules"][0]
    by_rule = [
        orjson.loads(x) for x in gateway.cli("audit", "query", "--rule", rule).output.split()
    ]
    assert found[0]["index"] in [r["index"] for r in by_rule]
    assert all(rule in r["entry"]["rules"] for r in by_rule)
    assert gateway.cli("audit", "query", "--rule", "no-such-rule").output == ""
    assert "OK:" in gateway.cli("audit", "verify").output
