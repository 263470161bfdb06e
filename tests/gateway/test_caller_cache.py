"""The callers a worker keeps are loaded lazily and bounded: a worker's memory does not grow with
the number of principals (issue 15, item 6; bench/scale.py measures it on a million)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from clearance.config import Settings
from clearance.demo.run import seed
from clearance.policy.state import DecisionState
from clearance.principals.service import create_key
from clearance.store import connect, migrate

from .conftest import make_instance


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[tuple[Settings, Engine, list[str]]]:
    settings, _ = make_instance(db_url, tmp_path / "instance")
    settings = replace(settings, policy=replace(settings.policy, caller_cache_size=3))
    engine = connect(settings.database_url)
    migrate(engine)
    seed(engine, settings, "http://127.0.0.1:9/v1")
    with engine.begin() as conn:
        keys = [
            create_key(conn, "alice@demo.test", name=f"k{i}", allow_fallback=True)[1]
            for i in range(5)
        ]
    yield settings, engine, keys
    engine.dispose()


def test_no_caller_is_loaded_before_its_key_is_used(
    world: tuple[Settings, Engine, list[str]],
) -> None:
    settings, engine, keys = world
    state = DecisionState(settings, engine)
    state.load()
    assert all(state.cached_caller(k) is None for k in keys)
    caller = state.load_caller(keys[0])
    assert state.cached_caller(keys[0]) is caller
    assert all(state.cached_caller(k) is None for k in keys[1:])


def test_the_least_recently_used_caller_is_dropped_beyond_the_bound(
    world: tuple[Settings, Engine, list[str]],
) -> None:
    settings, engine, keys = world
    state = DecisionState(settings, engine)
    state.load()
    first = state.load_caller(keys[0])
    state.load_caller(keys[1])
    state.load_caller(keys[2])
    assert state.cached_caller(keys[0]) is first  # used: now the most recent
    state.load_caller(keys[3])  # over the bound of 3: keys[1], the least recent, goes
    assert state.cached_caller(keys[1]) is None
    assert [state.cached_caller(k) is not None for k in (keys[0], keys[2], keys[3])] == [True] * 3
    state.load_caller(keys[4])
    state.load_caller(keys[1])  # a dropped key is looked up again, and works
    cached = [k for k in keys if state.cached_caller(k) is not None]
    assert len(cached) == 3 and keys[1] in cached and keys[4] in cached
