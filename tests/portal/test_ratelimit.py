"""Sign-in rate limits in the database: one budget for every worker, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.app import create_app
from clearance.net.client import client_subject
from clearance.net.serving import serve_in_thread
from clearance.portal import ratelimit
from clearance.portal.ratelimit import RateLimiter
from clearance.portal.tables import portal_rate_limits
from clearance.store import connect
from tests.portal.conftest import Browser, Running

KEY = b"k" * 32
WINDOW = 900
T0 = 2_000_000 * WINDOW  # the start of a window (2027)


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def second_engine(db_url: str) -> Iterator[Engine]:
    """Another process's view of the same database: its own engine and connection pool."""
    other = connect(db_url)
    yield other
    other.dispose()


def limiter(
    engine: Engine, clock: Clock, limit: int = 5, scope: str = "signin-address"
) -> RateLimiter:
    return RateLimiter(engine, KEY, scope=scope, limit=limit, window=WINDOW, clock=clock)


def test_two_workers_share_one_budget(engine: Engine, second_engine: Engine) -> None:
    clock = Clock(T0 + 10)
    first, second = limiter(engine, clock), limiter(second_engine, clock)
    answers = [(first if i % 2 else second).allow("ada@example.org") for i in range(5)]
    assert answers == [True] * 5
    assert not first.allow("ada@example.org") and not second.allow("ada@example.org")
    assert first.allow("bob@example.org")  # the limit is per subject


def test_concurrent_attempts_never_exceed_the_limit(engine: Engine, second_engine: Engine) -> None:
    clock = Clock(T0 + 10)
    workers = [limiter(engine, clock, limit=7), limiter(second_engine, clock, limit=7)]
    start = threading.Barrier(8)
    allowed: list[bool] = []
    lock = threading.Lock()

    def attempt(worker: RateLimiter) -> None:
        start.wait()
        for _ in range(5):
            answer = worker.allow("ada@example.org")
            with lock:
                allowed.append(answer)

    threads = [threading.Thread(target=attempt, args=(workers[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 40 and allowed.count(True) == 7  # the upsert is atomic
    with engine.connect() as conn:
        assert conn.execute(sa.select(portal_rate_limits.c.count)).scalar_one() == 7


def test_windows_roll_over_with_the_previous_one_weighted(engine: Engine) -> None:
    clock = Clock(T0)
    limit = limiter(engine, clock)
    assert [limit.allow("ada") for _ in range(6)] == [True] * 5 + [False]
    clock.at = T0 + WINDOW  # a new window: the previous one still counts in full
    assert not limit.allow("ada")
    clock.at = T0 + 1.5 * WINDOW  # half of it still overlaps: 5 * 0.5 = 2.5, room for 2
    assert [limit.allow("ada") for _ in range(3)] == [True, True, False]
    clock.at = T0 + 2 * WINDOW  # the previous window now holds the 2 (refusals never count)
    assert [limit.allow("ada") for _ in range(4)] == [True] * 3 + [False]
    clock.at = T0 + 4 * WINDOW  # two idle windows: the whole budget again
    assert [limit.allow("ada") for _ in range(6)] == [True] * 5 + [False]


def test_subjects_are_stored_as_keyed_digests(engine: Engine) -> None:
    clock = Clock(T0)
    by_address = limiter(engine, clock, limit=1)
    by_client = limiter(engine, clock, limit=1, scope="signin-client")
    assert by_address.allow("ada@example.org")
    assert by_client.allow("ada@example.org")  # another limiter's counter, not this one's
    with engine.connect() as conn:
        stored = set(conn.execute(sa.select(portal_rate_limits.c.key_hash)).scalars())
    assert len(stored) == 2
    assert hashlib.sha256(b"ada@example.org").hexdigest() not in stored  # not a plain hash
    other_key = RateLimiter(engine, b"x" * 32, scope="signin-address", limit=1)
    assert other_key.digest("ada@example.org") not in stored


def test_purge_drops_only_windows_nobody_reads(engine: Engine) -> None:
    clock = Clock(T0)
    limit = limiter(engine, clock)
    for at in (T0, T0 + WINDOW, T0 + 2 * WINDOW):
        clock.at = at
        assert limit.allow("ada")
    with engine.begin() as conn:
        assert ratelimit.purge(conn, now=T0 + 2 * WINDOW + 1, window=WINDOW) == 1
        left = conn.execute(sa.select(portal_rate_limits.c.window_start)).scalars().all()
    assert sorted(left) == [T0 + WINDOW, T0 + 2 * WINDOW]  # the previous window still weighs


@pytest.mark.parametrize(
    ("address", "counted_as"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),  # same subscriber, same budget
        ("testclient", "testclient"),
    ],
)
def test_ipv6_clients_are_counted_by_their_slash_64(address: str, counted_as: str) -> None:
    assert client_subject(address) == counted_as


def test_two_gateway_workers_share_the_sign_in_budget(gateway: Running, browser: Browser) -> None:
    assert gateway.settings.portal.signins_per_address == 5
    # A second worker of the same instance, as uvicorn --workers 2 would start.
    with serve_in_thread(create_app(gateway.settings)) as url:
        other = Browser(url)
        answers = [
            (browser if i % 2 else other).ask_link("limited@example.org").status_code
            for i in range(6)
        ]
        other.close()
    assert answers == [200] * 5 + [429]
