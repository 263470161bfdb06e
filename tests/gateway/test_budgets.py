"""Spend budgets (docs/limits.md): a person's spend per UTC day at the served model's prices,
through a running gateway and the official SDKs, counted in-process and in the real Redis at
127.0.0.1:6379; the reserve that keeps concurrent requests from overspending together."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import redis
from anthropic.types import MessageParam
from typer.testing import CliRunner

from clearance.cli.app import app as cli_app
from clearance.config import Settings
from clearance.limits.limiter import Limiter
from clearance.limits.memory import MemoryCounter
from clearance.limits.models import MICROS, Bucket, Period, cost_micros, period_window
from clearance.limits.usage import split_of
from clearance.principals.service import get_user
from clearance.store import connect

from .test_limits import (
    REDIS,
    Node,
    _chat,
    _entries,
    _limits,
    _node,
    _seeded,
    _settings,
    needs_redis,
)

HI: list[MessageParam] = [{"role": "user", "content": "hi"}]
PRICES = (Decimal("2"), Decimal("8"))  # per million input / output tokens


def _cli(config: Path, *args: str) -> str:
    done = CliRunner().invoke(cli_app, [*args, "--config", str(config)])
    assert done.exit_code == 0, done.output
    return done.output


def _price(config: Path, model: str, nodes: tuple[Node, ...]) -> None:
    _cli(config, "models", "update", model, "--input-price", "2", "--output-price", "8")
    for n in nodes:
        n.app.poll_from_thread()


def _user_id(settings: Settings, email: str) -> int:
    engine = connect(settings.database_url)
    try:
        with engine.connect() as conn:
            return get_user(conn, email).id
    finally:
        engine.dispose()


def _cost(usage: Any) -> int:
    data = usage.model_dump() if hasattr(usage, "model_dump") else dict(usage)
    inp, out = split_of(data)
    return cost_micros(inp, out, PRICES)


def _to_midnight() -> float:
    now = datetime.now(UTC)
    return (
        datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1) - now
    ).total_seconds()


@pytest.fixture
def node(instance: tuple[Settings, Path], upstream_url: str) -> Iterator[Node]:
    settings = _settings(instance)
    with _node(settings, _seeded(settings, upstream_url)) as n:
        yield n


def test_a_spent_budget_is_refused_with_the_quota_code_until_the_period_ends(
    node: Node, instance: tuple[Settings, Path]
) -> None:
    config = instance[1]
    _price(config, "fable-4", (node,))
    out = _cli(
        config, "limits", "set", "--user", "alice@demo.test", "--budget", "100", "--period", "day"
    )
    assert "mythos-5" in out  # unpriced models are named: they are not charged
    node.app.poll_from_thread()
    alice = node.openai("alice")
    first = _chat(alice, max_tokens=20)
    streamed = list(
        _chat(alice, max_tokens=20, stream=True, stream_options={"include_usage": True})
    )
    usage = [first.usage, next(c.usage for c in streamed if c.usage is not None)]
    spent = sum(_cost(u) for u in usage)
    assert spent > 0

    # The reserves were released: what the budget holds is exactly what the answers cost.
    name, _ = period_window(Period.DAY, time.time())
    user = _user_id(node.settings, "alice@demo.test")
    counter = node.app.decisions.limiter.local
    assert counter._spent[f"user:{user}:b:{name}"] == spent

    # A budget of exactly what was spent: the next request is refused, whatever the model.
    amount = f"{Decimal(spent) / MICROS:f}"
    _limits(config, "set", "--user", "alice@demo.test", "--budget", amount, nodes=(node,))
    with pytest.raises(openai.RateLimitError) as refused:
        _chat(alice, max_tokens=20)
    response = refused.value.response
    error = response.json()["error"]
    assert error["code"] == "insufficient_quota" and "spend budget" in error["message"]
    assert abs(int(response.headers["retry-after"]) - _to_midnight()) <= 5
    with pytest.raises(openai.RateLimitError):
        _chat(alice, model="mythos-5")  # unpriced, yet the budget is spent
    with pytest.raises(anthropic.RateLimitError):
        node.anthropic("alice").messages.create(model="fable-4", max_tokens=8, messages=HI)
    assert _chat(node.openai("dana")).choices  # another person's budget is their own

    loop = node.app._loop
    assert loop is not None
    asyncio.run_coroutine_threadsafe(node.app.decisions.flush_refusals(), loop).result(10)
    summaries = [e for e in _entries(node.settings) if e["type"] == "refusal_summary"]
    assert {(s["reason"], s["status"]) for s in summaries} == {("limit.budget.user", 429)}


def test_a_request_whose_worst_case_would_pass_the_budget_is_refused(
    node: Node, instance: tuple[Settings, Path]
) -> None:
    _price(instance[1], "fable-4", (node,))
    # 1 unit at 8 per million output tokens: 125,000 output tokens; max_tokens above it cannot
    # be admitted, one below it can.
    _limits(
        instance[1], "set", "--user", "alice@demo.test", "--budget", "1", "--period", "month",
        nodes=(node,),
    )  # fmt: skip
    alice = node.openai("alice")
    with pytest.raises(openai.RateLimitError) as refused:
        _chat(alice, max_tokens=200_000)
    assert refused.value.response.json()["error"]["code"] == "insufficient_quota"
    assert _chat(alice, max_tokens=100_000).choices


async def _admit_all(limiter: Limiter, buckets: tuple[Bucket, ...], n: int) -> int:
    results = await asyncio.gather(
        *(
            limiter.admit(buckets, controlled=True, prices=PRICES, estimate=(0, 1_000_000))
            for _ in range(n)
        ),
        return_exceptions=True,
    )
    return sum(1 for r in results if not isinstance(r, BaseException))


def test_concurrent_admissions_cannot_overspend_in_process(instance: tuple[Settings, Path]) -> None:
    # Each request reserves a million output tokens: 8 units; a budget of 40 admits five.
    limiter = Limiter(instance[0])
    bucket = Bucket("user:1", budget=40 * MICROS, period=Period.DAY)
    assert asyncio.run(_admit_all(limiter, (bucket,), 32)) == 5
    assert isinstance(limiter.local, MemoryCounter)


@needs_redis
def test_concurrent_admissions_cannot_overspend_across_processes_in_redis(
    instance: tuple[Settings, Path],
) -> None:
    settings = _settings(instance, REDIS)
    bucket = Bucket("user:1", budget=40 * MICROS, period=Period.DAY)

    async def two_limiters() -> int:
        one, two = Limiter(settings), Limiter(settings)  # two gateway processes' clients
        try:
            counts = await asyncio.gather(
                _admit_all(one, (bucket,), 16), _admit_all(two, (bucket,), 16)
            )
            return sum(counts)
        finally:
            await one.close()
            await two.close()

    assert asyncio.run(two_limiters()) == 5
    client = redis.Redis.from_url(REDIS)
    try:
        name, _ = period_window(Period.DAY, time.time())
        key = f"{settings.redis.key_prefix}:user:1:b:{name}"
        assert int(client.get(key) or 0) == 40 * MICROS
        assert 0 < client.ttl(key) <= _to_midnight() + 86_400 + 5
        client.delete(key)
    finally:
        client.close()


@needs_redis
def test_two_gateways_charge_one_budget_in_redis_and_never_pass_it(
    instance: tuple[Settings, Path], upstream_url: str
) -> None:
    settings = _settings(instance, REDIS)
    keys = _seeded(settings, upstream_url)
    with _node(settings, keys) as a, _node(settings, keys, background=False) as b:
        _price(instance[1], "fable-4", (a, b))
        # Room for a few requests' reserves (about 100 tokens each at these prices): a burst of
        # sixteen at once over two gateways must stop short of the budget, never past it.
        budget = Decimal("0.002")
        _limits(
            instance[1], "set", "--user", "alice@demo.test", "--budget", f"{budget:f}",
            "--period", "day", nodes=(a, b),
        )  # fmt: skip

        def one(n: int) -> bool:
            try:
                _chat((a if n % 2 else b).openai("alice"), max_tokens=64)
            except openai.RateLimitError:
                return False
            return True

        with ThreadPoolExecutor(16) as pool:
            served = list(pool.map(one, range(16)))
    assert any(served) and not all(served)
    client = redis.Redis.from_url(REDIS)
    try:
        name, _ = period_window(Period.DAY, time.time())
        user = _user_id(settings, "alice@demo.test")
        spent = int(client.get(f"{settings.redis.key_prefix}:user:{user}:b:{name}") or 0)
        assert 0 < spent <= math.ceil(budget * MICROS)
        client.delete(*client.scan_iter(settings.redis.key_prefix + ":*"))
    finally:
        client.close()


def test_prices_are_checked_and_shown(node: Node, instance: tuple[Settings, Path]) -> None:
    config = instance[1]
    for bad in ("-1", "abc", "1.0000001", "2000000"):
        done = CliRunner().invoke(
            cli_app,
            [
                "models",
                "update",
                "fable-4",
                "--input-price",
                bad,
                "--output-price",
                "1",
                "--config",
                str(config),
            ],
        )
        assert done.exit_code != 0 and "--input-price" in str(done.exception), done.output
    half = CliRunner().invoke(
        cli_app, ["models", "update", "fable-4", "--input-price", "1", "--config", str(config)]
    )
    assert half.exit_code != 0 and "both" in str(half.exception)
    _price(config, "fable-4", (node,))
    listed = _cli(config, "models", "list", "--json")
    assert '"input_price": "2"' in listed and '"output_price": "8"' in listed
