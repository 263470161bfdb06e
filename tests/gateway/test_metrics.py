"""/metrics for the whole node: one scrape of any of `clearance serve --workers 2`'s workers counts
every worker's requests, a killed worker's included once; the job queue's depth and latency read
from the database."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from clearance.config import Settings
from clearance.decision import multiprocess
from clearance.demo.run import free_port, seed
from clearance.demo.upstream import demo_upstream_app
from clearance.jobs import service as jobs
from clearance.jobs.models import JobKind
from clearance.net.serving import serve_in_thread
from clearance.store import connect
from tests.gateway.conftest import CLEARANCE, Running

DEADLINE = 60.0


def wait_until(what: str, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def scrape(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """One scrape, on a connection of its own: every sample by name and labels."""
    reply = httpx.get(f"{base}/metrics", timeout=10)
    assert reply.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


def total(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str) -> float:
    return sum(value for (n, _), value in samples.items() if n == name)


def one(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_the_queue_and_job_latency_are_scraped(gateway: Running) -> None:
    """Queue depth by state, and each finished job counted once in its latency bucket (queued
    to finished), whichever runner ended it."""
    engine = connect(gateway.settings.database_url)
    t0 = jobs.utc_now()
    try:
        with engine.begin() as conn:
            for _ in range(4):
                jobs.enqueue(
                    conn, JobKind.VERIFY_DOCUMENT, {}, user_id=None, max_attempts=3, now=t0
                )
        first = jobs.claim(engine, lease_seconds=60, runner="test", now=t0)
        second = jobs.claim(engine, lease_seconds=60, runner="test", now=t0)
        third = jobs.claim(engine, lease_seconds=60, runner="test", now=t0)
        assert first and second and third
        assert jobs.complete(engine, first, now=t0 + timedelta(seconds=3))
        assert not jobs.complete(engine, first, now=t0 + timedelta(seconds=4))  # once
        assert jobs.reject(engine, second, "unreadable", now=t0 + timedelta(seconds=700))
    finally:
        engine.dispose()

    samples = scrape(gateway.url)
    assert one(samples, "clearance_job_queue_depth", state="queued") == 1
    assert one(samples, "clearance_job_queue_depth", state="running") == 1
    done = {"kind": "identity.verify", "outcome": "done"}
    assert one(samples, "clearance_job_latency_seconds_bucket", **done, le="2.5") == 0
    assert one(samples, "clearance_job_latency_seconds_bucket", **done, le="5.0") == 1
    assert one(samples, "clearance_job_latency_seconds_count", **done) == 1
    assert one(samples, "clearance_job_latency_seconds_sum", **done) == 3
    rejected = {"kind": "identity.verify", "outcome": "rejected"}
    assert one(samples, "clearance_job_latency_seconds_bucket", **rejected, le="600.0") == 0
    assert one(samples, "clearance_job_latency_seconds_bucket", **rejected, le="1800.0") == 1
    assert one(samples, "clearance_job_latency_seconds_bucket", **rejected, le="+Inf") == 1
    assert one(samples, "clearance_workers") == 1  # one process: its own registry


def _worker_pids(base: str, count: int) -> set[int]:
    """The workers' pids, from /healthz on new connections until `count` have answered."""
    seen: set[int] = set()

    def answered() -> bool:
        seen.add(int(httpx.get(f"{base}/healthz", timeout=10).json()["worker"]))
        return len(seen) >= count

    wait_until(f"{count} workers answered", answered)
    return seen


def _metrics_dir(pid: int) -> Path:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    value = next(e for e in environ if e.startswith(multiprocess.ENV.encode() + b"="))
    return Path(value.partition(b"=")[2].decode())


def _decisions_of(directory: Path, pid: int) -> float:
    """The decisions one worker counted, from its own file alone."""
    path = directory / f"counter_{pid}.db"
    if not path.exists():
        return 0.0
    return sum(
        s.value
        for family in MultiProcessCollector.merge([str(path)], accumulate=True)  # type: ignore[no-untyped-call]
        if family.name == "clearance_decisions"
        for s in family.samples
    )


def test_one_scrape_sees_every_worker(instance: tuple[Settings, Path]) -> None:
    settings, config = instance
    with serve_in_thread(demo_upstream_app(chunk_delay=0.0), lifespan="off") as upstream:
        engine = connect(settings.database_url)
        key = seed(engine, settings, upstream)["alice@demo.test"]
        with engine.begin() as conn:
            for _ in range(2):
                jobs.enqueue(conn, JobKind.VERIFY_DOCUMENT, {}, user_id=None, max_attempts=3)
        engine.dispose()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                CLEARANCE,
                "serve",
                "--config",
                str(config),
                "--port",
                str(port),
                "--workers",
                "2",
                "--no-worker",
            ],
            env={**os.environ, "CLEARANCE_CONFIG": str(config)},
        )
        body = {"model": "fable-4", "messages": [{"role": "user", "content": "hi"}]}
        auth = {"authorization": f"Bearer {key}"}
        sent = 0

        def send(n: int) -> None:
            """`n` requests, four at a time, each on a connection of its own."""
            nonlocal sent

            def post(_: int) -> tuple[int, str]:
                url = f"{base}/v1/chat/completions"
                answer = httpx.post(url, json=body, headers=auth, timeout=30)
                return answer.status_code, "" if answer.status_code == 200 else answer.text

            with ThreadPoolExecutor(4) as pool:
                answers = list(pool.map(post, range(n)))
            assert {status for status, _ in answers} == {200}, answers
            sent += n

        try:

            def up() -> bool:
                assert server.poll() is None, "clearance serve stopped"
                try:
                    return httpx.get(f"{base}/healthz", timeout=5).status_code == 200
                except httpx.TransportError:
                    return False

            wait_until("serve answers", up)
            workers = _worker_pids(base, 2)
            directory = _metrics_dir(next(iter(workers)))
            assert directory.name.startswith(f"clearance-metrics-{server.pid}-")
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700

            # Until each worker has counted some of them: the requests are spread.
            def spread() -> bool:
                send(8)
                return all(_decisions_of(directory, pid) > 0 for pid in workers)

            wait_until("both workers served requests", spread)
            samples = scrape(base)
            assert total(samples, "clearance_decisions_total") == sent
            assert one(samples, "clearance_workers") == 2
            assert one(samples, "clearance_job_queue_depth", state="queued") == 2
            assert one(samples, "clearance_job_queue_depth", state="running") == 0

            # A worker killed outright: uvicorn starts another; its counts stay, counted once.
            killed = min(workers)
            os.kill(killed, signal.SIGKILL)
            wait_until("a new worker answers", lambda: bool(_worker_pids(base, 1) - workers))
            samples = scrape(base)
            assert total(samples, "clearance_decisions_total") == sent
            assert one(samples, "clearance_workers") == 2  # the dead one's gauge is gone
            assert not list(directory.glob(f"gauge_livesum_{killed}.db"))
            send(6)
            assert total(scrape(base), "clearance_decisions_total") == sent
        finally:
            server.terminate()
            assert server.wait(timeout=60) == 0
        assert not directory.exists()  # cleaned at stop


def test_a_killed_runs_directory_is_removed_at_the_next_start(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = tmp_path / f"clearance-metrics-{gone.pid}-abc"
    stale.mkdir()
    (stale / "counter_1.db").write_bytes(b"")
    live = tmp_path / f"clearance-metrics-{os.getpid()}-def"
    live.mkdir()
    made = multiprocess.create(tmp_path)
    assert not stale.exists() and live.exists()
    assert made.name.startswith(f"clearance-metrics-{os.getpid()}-")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
