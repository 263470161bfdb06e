"""Instant invalidation on PostgreSQL: a change's writer NOTIFYs, every worker LISTENs and drops
its cached state as the change commits; a worker whose LISTEN connection dies reconnects, and
hears the next change. (On SQLite the workers poll: test_workers.py.)

Every wait here is for an event (a refusal, a reconnection), bounded by a deadline; no test
asserts how long anything took: bench/invalidation.py measures that."""

from __future__ import annotations

import dataclasses
import http.client
import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from clearance.app import create_app
from clearance.config import Settings
from clearance.demo.run import seed
from clearance.demo.upstream import demo_upstream_app
from clearance.net.serving import serve_in_thread
from clearance.principals.service import revoke_key
from clearance.store import connect, migrate
from clearance.store.listener import APPLICATION_NAME

from .conftest import Running
from .nodes import DEADLINE, cli, new_key, nodes, wait_until

pytestmark = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

CHAT = {"model": "fable-5", "messages": [{"role": "user", "content": "hi"}]}


def listener_pids(settings: Settings) -> set[int]:
    """The server processes of the LISTEN connections on this instance's database."""
    engine = connect(settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": APPLICATION_NAME},
            )
            return {int(pid) for (pid,) in rows}
    finally:
        engine.dispose()


def terminate(settings: Settings, pids: set[int]) -> None:
    engine = connect(settings.database_url)
    try:
        with engine.connect() as conn:
            for pid in pids:
                conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        engine.dispose()


def notices(running: Running, kind: str) -> float:
    assert running.app is not None
    value = running.app.metrics.registry.get_sample_value(
        "clearance_invalidation_notices_total", {"kind": kind}
    )
    return value or 0.0


def test_a_revocation_is_announced_and_drops_the_key(gateway: Running) -> None:
    assert gateway.app is not None and gateway.app.listener is not None
    listener = gateway.app.listener
    wait_until("the worker listens", lambda: listener.connected)
    key_id, secret = new_key(gateway.settings, "alice@demo.test")
    models = f"{gateway.url}/v1/models"
    auth = {"authorization": f"Bearer {secret}"}
    assert httpx.get(models, headers=auth).status_code == 200  # cached from now on

    gateway.cli("keys", "revoke", key_id)
    wait_until("the key is refused", lambda: httpx.get(models, headers=auth).status_code == 401)
    wait_until("the notice is counted", lambda: notices(gateway, "principals") >= 1)
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert "clearance_invalidation_lag_seconds_count" in metrics
    assert "clearance_invalidation_listening 1.0" in metrics


def test_a_killed_listener_reconnects_and_hears_the_next_change(gateway: Running) -> None:
    assert gateway.app is not None and gateway.app.listener is not None
    listener = gateway.app.listener
    wait_until("the worker listens", lambda: listener.connected)
    first = listener.backend_pid
    assert first is not None and listener_pids(gateway.settings) == {first}

    terminate(gateway.settings, {first})
    wait_until(
        "the worker listens again on a new connection",
        lambda: listener.connected and listener.backend_pid not in (None, first),
    )
    assert listener.connections == 2
    _, secret = new_key(gateway.settings, "alice@demo.test")
    client = gateway.openai(secret)
    client.chat.completions.create(model="fable-5", messages=[{"role": "user", "content": "hi"}])

    before = notices(gateway, "catalog")
    gateway.cli("models", "suspend", "fable-5", "--reason", "drill")
    wait_until("the notice arrives", lambda: notices(gateway, "catalog") > before)
    chat = f"{gateway.url}/v1/chat/completions"
    auth = {"authorization": f"Bearer {secret}"}
    wait_until(
        "the suspended model is refused",
        lambda: httpx.post(chat, json=CHAT, headers=auth).status_code == 451,
    )


def test_without_listen_the_workers_poll(
    instance: tuple[Settings, Path], upstream_url: str
) -> None:
    """`database_listen = false`: no LISTEN connection; a change still arrives, by the poll."""
    settings, _ = instance
    settings = dataclasses.replace(settings, database_listen=False)
    engine = connect(settings.database_url)
    migrate(engine)
    seed(engine, settings, upstream_url)
    engine.dispose()
    key_id, secret = new_key(settings, "alice@demo.test")
    app = create_app(settings)
    assert app.listener is None
    with serve_in_thread(app) as url:
        assert httpx.get(f"{url}/healthz").json()["invalidation"] == "poll"
        auth = {"authorization": f"Bearer {secret}"}
        assert httpx.get(f"{url}/v1/models", headers=auth).status_code == 200
        engine = connect(settings.database_url)
        try:
            with engine.begin() as conn:
                revoke_key(conn, key_id)
        finally:
            engine.dispose()
        wait_until(
            "the poll drops the key",
            lambda: httpx.get(f"{url}/v1/models", headers=auth).status_code == 401,
        )
        assert listener_pids(settings) == set()


# --- several nodes --------------------------------------------------------------------------


class Worker:
    """One keep-alive connection to a node, which stays with the worker that accepted it."""

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=10)
        self.health = self.get("/healthz")[1]
        self.pid = int(self.health["worker"])

    def request(
        self, method: str, path: str, body: object = None, key: str = ""
    ) -> tuple[int, dict[str, Any]]:
        headers = {"content-type": "application/json"}
        if key:
            headers["authorization"] = f"Bearer {key}"
        data = None if body is None else json.dumps(body).encode()
        self.conn.request(method, path, body=data, headers=headers)
        reply = self.conn.getresponse()
        return reply.status, json.loads(reply.read() or b"{}")

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        return self.request("GET", path)

    def chat(self, key: str) -> int:
        return self.request("POST", "/v1/chat/completions", CHAT, key)[0]


def answers(worker: Worker, key: str, status: int) -> Callable[[], bool]:
    return lambda: worker.chat(key) == status


def every_worker(base: str, workers: int) -> list[Worker]:
    """A connection to each of a node's workers: new connections until all have answered (the
    kernel hands each new connection to one of them)."""
    found: dict[int, Worker] = {}
    deadline = time.monotonic() + DEADLINE
    while len(found) < workers:
        assert time.monotonic() < deadline, f"{base}: fewer than {workers} workers answer"
        worker = Worker(base)
        if worker.pid in found:
            worker.conn.close()
        else:
            found[worker.pid] = worker
    return list(found.values())


@pytest.mark.slow
def test_every_worker_of_every_node_hears_each_change(instance: tuple[Settings, Path]) -> None:
    """3 nodes of 2 workers: a suspension, a revocation, and after every LISTEN connection is
    killed a resumption, each reach all 6 workers."""
    settings, config = instance
    with serve_in_thread(demo_upstream_app(chunk_delay=0.0), lifespan="off") as upstream:
        engine = connect(settings.database_url)
        seed(engine, settings, upstream)
        engine.dispose()
        key_id, key = new_key(settings, "alice@demo.test")
        with nodes(config, 3, 2) as bases, ExitStack() as connections:
            workers = [w for base in bases for w in every_worker(base, 2)]
            for w in workers:
                connections.callback(w.conn.close)
            assert len({w.pid for w in workers}) == 6
            wait_until(
                "every worker listens",
                lambda: all(w.get("/healthz")[1]["invalidation"] == "listen" for w in workers),
            )
            assert all(w.chat(key) == 200 for w in workers)

            cli(config, "models", "suspend", "fable-5", "--reason", "drill")
            for w in workers:
                wait_until(f"worker {w.pid} refuses fable-5", answers(w, key, 451))

            old = listener_pids(settings)
            assert len(old) == 6
            terminate(settings, old)
            wait_until(
                "every worker listens on a new connection",
                lambda: len(listener_pids(settings) - old) == 6,
            )
            cli(config, "models", "resume", "fable-5", "--reason", "drill over")
            for w in workers:
                wait_until(f"worker {w.pid} serves fable-5", answers(w, key, 200))

            cli(config, "keys", "revoke", key_id)
            for w in workers:
                wait_until(f"worker {w.pid} refuses the key", answers(w, key, 401))
