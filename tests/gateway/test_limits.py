"""Limits per person, organisation and key through a running gateway and the official SDKs:
in-process, and shared by two gateways through the real Redis at 127.0.0.1:6379."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anthropic
import openai
import orjson
import pytest
import redis
from starlette.types import Message, Receive, Scope, Send
from typer.testing import CliRunner

from clearance.app import Clearance
from clearance.audit.reader import LogReader
from clearance.cli.app import app as cli_app
from clearance.config import Settings
from clearance.demo.run import free_port, seed
from clearance.demo.upstream import demo_upstream_app
from clearance.limits import limiter
from clearance.limits.memory import WINDOW, MemoryCounter
from clearance.net.protocol import DeadlineProtocol
from clearance.net.serving import serve_in_thread
from clearance.principals.service import create_key
from clearance.store import connect, migrate

from .windows import redis_clock, wait_for_room

HELLO = [{"role": "user", "content": "hi"}]
REDIS = "redis://127.0.0.1:6379/0"


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


# CI (CLEARANCE_REQUIRE_REDIS=1, Redis started by .ci/run) runs these whatever: down is a failure.
needs_redis = pytest.mark.skipif(
    not _redis_up() and os.environ.get("CLEARANCE_REQUIRE_REDIS") != "1",
    reason="no Redis at 127.0.0.1:6379",
)


class Node:
    def __init__(self, url: str, app: Clearance, keys: dict[str, str], settings: Settings):
        self.url, self.app, self.keys, self.settings = url, app, keys, settings
        self.clients: list[Any] = []

    def openai(self, who: str, key: str | None = None) -> openai.OpenAI:
        secret = key or self.keys[f"{who}@demo.test"]
        client = openai.OpenAI(base_url=self.url + "/v1", api_key=secret, max_retries=0)
        self.clients.append(client)
        return client

    def anthropic(self, who: str) -> anthropic.Anthropic:
        secret = self.keys[f"{who}@demo.test"]
        client = anthropic.Anthropic(base_url=self.url, api_key=secret, max_retries=0)
        self.clients.append(client)
        return client


@pytest.fixture(autouse=True)
def one_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows are fixed minutes: a test whose requests straddle a minute's end would see its
    counts start again. Each in-process counter's clock runs at the real pace from the start of a
    window, so a test shorter than a minute stays in one (Redis windows: `_fresh_redis_window`)."""
    start = time.time()
    aligned = (start // WINDOW + 1) * WINDOW

    def counter(lease_seconds: float) -> MemoryCounter:
        return MemoryCounter(lease_seconds, clock=lambda: aligned + (time.time() - start))

    monkeypatch.setattr(limiter, "MemoryCounter", counter)


def _fresh_redis_window(room: float = 30.0) -> None:
    """Wait, on Redis's own clock, until at least `room` seconds are left in its minute."""
    client = redis.Redis.from_url(REDIS)
    try:
        wait_for_room(room, redis_clock(client))
    finally:
        client.close()


def _settings(instance: tuple[Settings, Path], redis_url: str = "") -> Settings:
    settings = instance[0]
    prefix = f"clearance-test:{uuid.uuid4().hex[:12]}"
    return replace(settings, redis=replace(settings.redis, url=redis_url, key_prefix=prefix))


@contextlib.contextmanager
def _node(settings: Settings, keys: dict[str, str], **kw: Any) -> Iterator[Node]:
    app = Clearance(settings, **kw)
    with serve_in_thread(app, http=DeadlineProtocol) as url:
        node = Node(url, app, keys, settings)
        yield node
        for client in node.clients:
            client.close()


def _seeded(settings: Settings, upstream_url: str) -> dict[str, str]:
    engine = connect(settings.database_url)
    migrate(engine)
    keys = seed(engine, settings, upstream_url)
    engine.dispose()
    return keys


def _limits(config: Path, *args: str, nodes: tuple[Node, ...] = ()) -> str:
    done = CliRunner().invoke(cli_app, ["limits", *args, "--config", str(config)])
    assert done.exit_code == 0, done.output
    for node in nodes:  # applied now (or already, by a notification), not at the next poll
        node.app.poll_from_thread()
    return done.output


def _chat(client: openai.OpenAI, model: str = "fable-4", **kw: Any) -> Any:
    return client.chat.completions.create(model=model, messages=HELLO, **kw)


def _entries(settings: Settings) -> list[dict[str, Any]]:
    engine = connect(settings.database_url)
    try:
        reader = LogReader(engine)
        committed, _ = reader.sizes()
        return [orjson.loads(e) for e in reader.entries(0, committed)]
    finally:
        engine.dispose()


@pytest.fixture
def node(instance: tuple[Settings, Path], upstream_url: str) -> Iterator[Node]:
    settings = _settings(instance)
    with _node(settings, _seeded(settings, upstream_url)) as n:
        yield n


def test_the_sdks_get_their_rate_limit_error_with_retry_after(
    node: Node, instance: tuple[Settings, Path]
) -> None:
    config = instance[1]
    alice = node.openai("alice")
    assert _chat(alice).choices[0].message.content  # no limits: served
    _limits(config, "set", "--user", "alice@demo.test", "--rpm", "2", nodes=(node,))
    _chat(alice)
    _chat(alice, model="mythos-5")
    with pytest.raises(openai.RateLimitError) as limited:
        _chat(alice)
    response = limited.value.response
    assert 1 <= int(response.headers["retry-after"]) <= 60
    error = response.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and "requests per minute" in error["message"]
    # The person's limit, whichever surface they use.
    with pytest.raises(anthropic.RateLimitError) as claude:
        node.anthropic("alice").messages.create(model="fable-4", max_tokens=8, messages=HELLO)
    assert claude.value.response.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(claude.value.response.headers["retry-after"]) <= 60
    assert _chat(node.openai("dana")).choices  # another person is not held
    # Refusals are counted into the interval's summary, not appended one by one.
    before = [e for e in _entries(node.settings) if e["type"] == "refusal_summary"]
    assert before == []
    loop = node.app._loop
    assert loop is not None
    asyncio.run_coroutine_threadsafe(node.app.decisions.flush_refusals(), loop).result(10)
    summaries = [e for e in _entries(node.settings) if e["type"] == "refusal_summary"]
    assert {(s["reason"], s["status"], s["surface"], s["count"]) for s in summaries} == {
        ("limit.rpm.user", 429, "openai", 1),
        ("limit.rpm.user", 429, "anthropic", 1),
    }


def test_two_keys_of_one_person_share_the_persons_limit(
    node: Node, instance: tuple[Settings, Path]
) -> None:
    engine = connect(node.settings.database_url)
    with engine.begin() as conn:
        _, second = create_key(conn, "alice@demo.test", name="second", allow_fallback=True)
    engine.dispose()
    _limits(instance[1], "set", "--user", "alice@demo.test", "--rpm", "3", nodes=(node,))
    one, two = node.openai("alice"), node.openai("alice", second)
    _chat(one)
    _chat(one)
    _chat(two)
    for client in (one, two):
        with pytest.raises(openai.RateLimitError):
            _chat(client)


def test_the_default_is_per_person_and_a_key_limit_adds_to_it(
    node: Node, instance: tuple[Settings, Path]
) -> None:
    config = instance[1]
    _limits(config, "set", "--default", "--rpm", "1", nodes=(node,))
    _chat(node.openai("alice"))
    _chat(node.openai("dana"))  # each person has their own allowance
    with pytest.raises(openai.RateLimitError):
        _chat(node.openai("alice"))
    _limits(config, "set", "--user", "alice@demo.test", "--rpm", "100", nodes=(node,))
    _chat(node.openai("alice"))  # her own limit replaces the default
    out = _limits(config, "show", "--json")
    shown = orjson.loads(out)
    assert shown["counted_in"] == "process"
    assert [(x["scope"], x["target"], x["rpm"]) for x in shown["limits"]] == [
        ("default", None, 1),
        ("user", "alice@demo.test", 100),
    ]
    assert "limits.set" in {e.get("action") for e in _entries(node.settings)}


class GatedUpstream:
    """The demo upstream whose streams stop after their first chunk until `gate` is set."""

    def __init__(self) -> None:
        self.inner = demo_upstream_app(chunk_delay=0.0)
        self.gate = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks = 0

        async def gated(message: Message) -> None:
            nonlocal chunks
            if message["type"] == "http.response.body":
                chunks += 1
                if chunks == 2:
                    await asyncio.to_thread(self.gate.wait, 60)
            await send(message)

        await self.inner(scope, receive, gated)


def test_concurrent_streams_are_limited_and_a_finished_one_frees_its_slot(
    instance: tuple[Settings, Path],
) -> None:
    upstream = GatedUpstream()
    with serve_in_thread(upstream, lifespan="off") as upstream_url:
        settings = _settings(instance)
        with _node(settings, _seeded(settings, upstream_url)) as node:
            _limits(
                instance[1], "set", "--user", "alice@demo.test", "--concurrent", "1", nodes=(node,)
            )
            alice = node.openai("alice")
            stream = iter(_chat(alice, stream=True))
            assert next(stream).choices  # the stream is open and held: its slot is taken
            with pytest.raises(openai.RateLimitError) as limited:
                _chat(alice)
            assert "at once" in limited.value.response.json()["error"]["message"]
            upstream.gate.set()
            assert list(stream)  # read to its end: the slot is freed before the last byte
            assert _chat(alice).choices
            assert list(_chat(alice, stream=True))
            assert _chat(alice).choices


def test_tokens_per_minute_count_the_upstreams_usage_streams_included(
    node: Node, instance: tuple[Settings, Path]
) -> None:
    alice = node.openai("alice")
    used = _chat(alice).usage
    assert used is not None and used.total_tokens > 0
    # Room for two answers of that size: the third request finds the minute's tokens spent.
    _limits(
        instance[1],
        "set",
        "--user",
        "alice@demo.test",
        "--tpm",
        str(2 * used.total_tokens - 1),
        nodes=(node,),
    )
    chunks = list(_chat(alice, stream=True))  # usage not asked for: counted, not shown
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)
    claude = node.anthropic("alice")
    claude.messages.create(model="fable-4", max_tokens=64, messages=HELLO)
    with pytest.raises(openai.RateLimitError) as limited:
        _chat(alice)
    assert "tokens per minute" in limited.value.response.json()["error"]["message"]


@needs_redis
def test_two_gateways_share_one_limit_in_redis(
    instance: tuple[Settings, Path], upstream_url: str
) -> None:
    settings = _settings(instance, REDIS)
    keys = _seeded(settings, upstream_url)
    with _node(settings, keys) as a, _node(settings, keys, background=False) as b:
        _limits(instance[1], "set", "--user", "alice@demo.test", "--rpm", "3", nodes=(a, b))
        _fresh_redis_window()
        _chat(a.openai("alice"))
        _chat(b.openai("alice"))
        _chat(a.openai("alice"), model="mythos-5")
        for n in (a, b):
            with pytest.raises(openai.RateLimitError):
                _chat(n.openai("alice"))
    client = redis.Redis.from_url(REDIS)
    stored = list(client.scan_iter(settings.redis.key_prefix + ":*"))
    assert stored and all(k.decode().startswith(settings.redis.key_prefix) for k in stored)
    client.delete(*stored)
    client.close()


def test_redis_unreachable_fails_closed_for_controlled_models_per_worker_for_others(
    instance: tuple[Settings, Path], upstream_url: str
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings = _settings(instance, closed)
    keys = _seeded(settings, upstream_url)
    with _node(settings, keys) as n:
        alice = n.openai("alice")
        # No limits: Redis is never asked, so its absence changes nothing.
        assert _chat(alice, model="mythos-5").model == "mythos-5"
        _limits(instance[1], "set", "--user", "alice@demo.test", "--rpm", "1", nodes=(n,))
        with pytest.raises(openai.InternalServerError) as closed_err:
            _chat(alice, model="mythos-5")
        assert closed_err.value.response.status_code == 503
        assert closed_err.value.response.json()["error"]["code"] == "limits_unavailable"
        _chat(alice)  # uncontrolled: counted by this worker ...
        with pytest.raises(openai.RateLimitError):
            _chat(alice)  # ... and held to the limit, never unlimited
    rejected = [e for e in _entries(settings) if e.get("reason") == "limits_unavailable"]
    assert [(e["outcome"], e["status"]) for e in rejected] == [("rejected", 503)]
