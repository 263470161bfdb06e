"""The refusal counter and the bad-key limiter on their own, with a clock the test moves."""

from __future__ import annotations

import orjson
import pytest

from clearance.config import GatewaySettings
from clearance.decision import refusals
from clearance.decision.refusals import Refusals
from clearance.errors import RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _counter(clock: Clock, **settings: int) -> Refusals:
    tuned = GatewaySettings(**settings)  # type: ignore[arg-type]
    return Refusals(tuned, b"test key material", clock=clock)


def _refuse(counter: Refusals, client: str, reason: str = "invalid_api_key") -> None:
    counter.count(reason=reason, status=401, surface="openai", country="US", client=client)


def _drain(counter: Refusals) -> list[dict[str, object]]:
    return [orjson.loads(e) for e in counter.drain()]


def test_one_summary_per_network_reason_and_surface() -> None:
    clock = Clock()
    counter = _counter(clock)
    for host in range(1, 101):
        _refuse(counter, f"198.51.100.{host}")  # one /24
        clock.now += 0.01
    _refuse(counter, "203.0.113.7")  # another /24
    _refuse(counter, "2001:db8:1:2::1")
    _refuse(counter, "2001:db8:1:ffff::2")  # the same /48
    _refuse(counter, "198.51.100.1", reason="missing_api_key")
    counter.count(
        reason="invalid_api_key",
        status=401,
        surface="anthropic",
        country="US",
        client="198.51.100.1",
    )
    summaries = _drain(counter)
    counts = sorted(int(str(s["count"])) for s in summaries)
    assert counts == [1, 1, 1, 2, 100]
    first = next(s for s in summaries if s["count"] == 100)
    assert str(first["first"]) < str(first["last"])
    assert len({s["client_network"] for s in summaries}) == 3
    text = orjson.dumps(summaries).decode()
    assert "198.51.100" not in text and "2001:db8" not in text
    assert _drain(counter) == []  # counts restart after each drain


def test_the_network_hash_is_keyed() -> None:
    clock = Clock()
    a, b = _counter(clock), Refusals(GatewaySettings(), b"another key", clock=clock)
    _refuse(a, "198.51.100.1")
    _refuse(b, "198.51.100.1")
    assert _drain(a)[0]["client_network"] != _drain(b)[0]["client_network"]


def test_too_many_networks_fall_into_one_overflow_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refusals, "MAX_BUCKETS", 10)
    counter = _counter(Clock())
    for n in range(50):
        _refuse(counter, f"10.{n}.0.1")
    summaries = _drain(counter)
    assert len(summaries) == 11
    overflow = [s for s in summaries if s["client_network"] is None]
    assert [s["count"] for s in overflow] == [40]
    assert overflow[0]["ip_country"] is None


def test_the_limit_holds_for_its_window_then_lifts() -> None:
    clock = Clock()
    counter = _counter(clock, bad_keys_per_client=3, bad_key_window_seconds=60)
    for _ in range(3):
        counter.check("192.0.2.1")
        _refuse(counter, "192.0.2.1")
    with pytest.raises(RateLimited) as limited:
        counter.check("192.0.2.1")
    assert limited.value.status == 429 and limited.value.reason == "too_many_bad_keys"
    assert limited.value.retry_after == 60
    counter.check("192.0.2.2")  # a neighbour is its own client
    # A 429 counted in the summary does not extend the window.
    counter.count(
        reason="too_many_bad_keys", status=429, surface="openai", country=None, client="192.0.2.1"
    )
    clock.now += 45
    with pytest.raises(RateLimited) as later:
        counter.check("192.0.2.1")
    assert later.value.retry_after == 15
    clock.now += 15
    counter.check("192.0.2.1")


def test_ipv6_clients_are_limited_by_their_64() -> None:
    counter = _counter(Clock(), bad_keys_per_client=2)
    _refuse(counter, "2001:db8::1")
    _refuse(counter, "2001:db8::2")
    with pytest.raises(RateLimited):
        counter.check("2001:db8::ffff")
    counter.check("2001:db8:0:1::1")


def test_a_limit_of_zero_is_no_limit() -> None:
    counter = _counter(Clock(), bad_keys_per_client=0)
    for _ in range(1000):
        _refuse(counter, "192.0.2.1")
    counter.check("192.0.2.1")


def test_the_limiter_forgets_old_clients_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refusals, "MAX_CLIENTS", 100)
    clock = Clock()
    counter = _counter(clock, bad_keys_per_client=1)
    for n in range(500):
        _refuse(counter, f"10.0.{n // 256}.{n % 256}")
        clock.now += 0.001
    assert len(counter._clients) <= 100
    with pytest.raises(RateLimited):
        counter.check("10.0.1.243")  # the newest is still held
