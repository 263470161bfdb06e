"""State invalidation has no window: a key revoked (or created) while a lookup of it is in flight
is known as such once the change is polled, whatever the lookup does meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Connection, Engine

from clearance.config import Settings
from clearance.demo.run import seed
from clearance.errors import AuthenticationError
from clearance.policy import state as state_module
from clearance.policy.state import Caller, DecisionState
from clearance.principals import keys as api_keys
from clearance.principals.models import ApiKey, User
from clearance.principals.service import authenticate, create_key, revoke_key
from clearance.store import connect, migrate

from .conftest import Running, make_instance


class SteppedState(DecisionState):
    """A DecisionState whose poll calls `at_new_versions` as it records the new version counters,
    before they are stored: the moment a lookup finishing in between is most dangerous."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.at_new_versions: Callable[[], object] | None = None
        self._recorded: dict[str, int] = {}
        super().__init__(settings, engine)

    @property
    def versions(self) -> dict[str, int]:
        return self._recorded

    @versions.setter
    def versions(self, value: dict[str, int]) -> None:
        hook, self.at_new_versions = self.at_new_versions, None
        if hook is not None:
            hook()
        self._recorded = value


class PausedLookup:
    """`load_caller` in a thread, held after its database read until the test lets it finish."""

    def __init__(self, state: DecisionState, secret: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.read, self.resume = threading.Event(), threading.Event()
        self.result: list[Caller | Exception] = []

        def authenticate_then_wait(conn: Connection, secret: str) -> tuple[ApiKey, User]:
            try:
                return authenticate(conn, secret)
            finally:
                self.read.set()
                assert self.resume.wait(10), "the test never resumed the lookup"
                monkeypatch.setattr(state_module, "authenticate", authenticate)  # once only

        monkeypatch.setattr(state_module, "authenticate", authenticate_then_wait)
        self.thread = threading.Thread(target=self._run, args=(state, secret), daemon=True)
        self.thread.start()
        assert self.read.wait(10), "the lookup never read the database"

    def _run(self, state: DecisionState, secret: str) -> None:
        try:
            self.result.append(state.load_caller(secret))
        except AuthenticationError as exc:
            self.result.append(exc)

    def finish(self) -> Caller | Exception:
        self.resume.set()
        self.thread.join(10)
        assert not self.thread.is_alive()
        return self.result[0]


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> tuple[Settings, Path]:
    """No bad-key limit here: the race test sends hundreds of revoked keys from one address on
    purpose, and a 429 tarpit would only slow the requests whose answers it checks."""
    return make_instance(db_url, tmp_path / "instance", "bad_keys_per_client = 0\n")


@pytest.fixture
def world(instance: tuple[Settings, Path]) -> Iterator[tuple[SteppedState, Engine, dict[str, str]]]:
    settings, _ = instance
    engine = connect(settings.database_url)
    migrate(engine)
    keys = seed(engine, settings, "http://127.0.0.1:9/v1")
    state = SteppedState(settings, engine)
    state.load()
    yield state, engine, keys
    engine.dispose()


def key_id(engine: Engine, secret: str) -> str:
    with engine.connect() as conn:
        return authenticate(conn, secret)[0].id


@pytest.mark.parametrize("finish_at", ["new_versions", "after_poll"])
def test_a_key_revoked_during_its_lookup_is_not_cached(
    world: tuple[SteppedState, Engine, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    finish_at: str,
) -> None:
    state, engine, keys = world
    secret = keys["alice@demo.test"]
    revoked = key_id(engine, secret)
    lookup = PausedLookup(state, secret, monkeypatch)  # has read the key while it was active
    with engine.begin() as conn:
        revoke_key(conn, revoked)
    if finish_at == "new_versions":
        state.at_new_versions = lookup.finish
    assert "principals" in state.poll()
    in_flight = lookup.finish() if finish_at == "after_poll" else lookup.result[0]
    # The request in flight was already past its check; no later one may be.
    assert isinstance(in_flight, Caller) and in_flight.key.id == revoked
    assert state.cached_caller(secret) is None
    with pytest.raises(AuthenticationError):
        state.load_caller(secret)
    with pytest.raises(AuthenticationError):
        state.cached_caller(secret)  # now refused from memory


@pytest.mark.parametrize("finish_at", ["new_versions", "after_poll"])
def test_a_key_created_during_its_lookup_is_not_refused(
    world: tuple[SteppedState, Engine, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    finish_at: str,
) -> None:
    state, engine, _ = world
    secret = api_keys.new_key()
    lookup = PausedLookup(state, secret, monkeypatch)  # has found no such key
    monkeypatch.setattr(api_keys, "new_key", lambda: secret)
    with engine.begin() as conn:
        created, _ = create_key(conn, "sven@demo.test", name="new", allow_fallback=True)
    if finish_at == "new_versions":
        state.at_new_versions = lookup.finish
    assert "principals" in state.poll()
    if finish_at == "after_poll":
        lookup.finish()
    assert isinstance(lookup.result[0], AuthenticationError)
    assert state.cached_caller(secret) is None  # not refused from memory: asked again
    assert state.load_caller(secret).key.id == created.id


def test_no_request_is_served_with_a_key_once_its_revocation_is_polled(gateway: Running) -> None:
    """Many requests at once, through the real server, while keys are revoked one by one: after
    the poll that saw a revocation, that key is refused every time."""
    engine = connect(gateway.settings.database_url)
    with engine.begin() as conn:
        secrets = [
            create_key(conn, "alice@demo.test", name=f"k{i}", allow_fallback=True)[1]
            for i in range(12)
        ]
    ids = [key_id(engine, s) for s in secrets]
    gateway.poll()
    polled: dict[str, float] = {}  # secret -> when the poll that saw its revocation returned
    seen: list[tuple[str, float, int]] = []  # (secret, when the request was sent, status)
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(base_url=gateway.url, timeout=30) as http:
            i = n
            while not stop.is_set():
                secret = secrets[i % len(secrets)]
                i += 1
                sent = time.monotonic()
                status = http.get(
                    "/v1/models", headers={"authorization": f"Bearer {secret}"}
                ).status_code
                seen.append((secret, sent, status))

    with ThreadPoolExecutor(8) as pool:
        running = [pool.submit(client, n) for n in range(8)]
        try:
            time.sleep(0.1)
            for secret, revoked in zip(secrets, ids, strict=True):
                with engine.begin() as conn:
                    revoke_key(conn, revoked)
                gateway.poll()
                polled[secret] = time.monotonic()
                time.sleep(0.03)  # lookups refill the cache, and race the next revocation
            # Enough requests after the polls to mean something, however slow the machine is.
            deadline = time.monotonic() + 20
            while sum(sent > polled[k] for k, sent, _ in list(seen)) <= 100:
                assert time.monotonic() < deadline, "too few requests were made"
                time.sleep(0.05)
        finally:
            stop.set()
            for future in running:
                future.result()
    engine.dispose()

    after = [(s, status) for s, sent, status in seen if sent > polled[s]]
    served = [s for s, status in after if status == 200]
    assert len(after) > 100 and any(status == 200 for *_, status in seen)
    assert not served, f"{len(served)} requests served with a key whose revocation was polled"
    assert {status for _, status in after} <= {401, 429}


def test_a_cached_key_stops_working_when_it_expires(
    world: tuple[SteppedState, Engine, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An expiry changes nothing stored, so no poll drops the cached caller: the cache itself
    checks the expiry on every request."""
    state, engine, _ = world
    expires = datetime.now(UTC) + timedelta(days=1)
    with engine.begin() as conn:
        _, secret = create_key(
            conn, "alice@demo.test", name="short", allow_fallback=True, expires_at=expires
        )
    assert state.load_caller(secret).expires == expires.timestamp()
    assert state.cached_caller(secret) is not None  # served from memory until then
    later = expires.timestamp() + 1
    monkeypatch.setattr(state_module, "_clock", lambda: later)
    for _ in range(2):  # the refusal is remembered, not looked up again
        with pytest.raises(AuthenticationError) as refused:
            state.cached_caller(secret)
        assert refused.value.reason == "expired_api_key"
