"""SIGTERM with live streams: new connections are refused within a second, streams in flight
finish, and each has its audit entry."""

from __future__ import annotations

import concurrent.futures
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from clearance.audit.reader import LogReader
from clearance.config import Settings
from clearance.demo.run import seed
from clearance.demo.upstream import demo_upstream_app
from clearance.net.serving import serve_in_thread
from clearance.store import connect
from tests.gateway.conftest import start_serve

STREAMS = 50


def _stream(url: str, key: str, started: threading.Semaphore) -> tuple[int, bytes]:
    with httpx.stream(
        "POST",
        url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "fable-4", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        timeout=30,
    ) as r:
        started.release()  # headers are in: this stream is in flight
        return int(r.headers["clearance-audit-index"]), b"".join(r.iter_raw())


def test_sigterm_drains_live_streams(instance: tuple[Settings, Path]) -> None:
    settings, config = instance
    with serve_in_thread(demo_upstream_app(chunk_delay=0.15), lifespan="off") as upstream:
        engine = connect(settings.database_url)
        key = seed(engine, settings, upstream)["alice@demo.test"]
        server, url = start_serve(config)
        try:
            with concurrent.futures.ThreadPoolExecutor(STREAMS) as pool:
                started = threading.Semaphore(0)
                streams = [pool.submit(_stream, url, key, started) for _ in range(STREAMS)]
                for _ in range(STREAMS):  # every stream is under way (however loaded the host)
                    assert started.acquire(timeout=30), "a stream never started"
                server.send_signal(signal.SIGTERM)
                time.sleep(1.0)
                # Refused: no listener (connect error), or reset while the backlog is dropped.
                with pytest.raises(
                    (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)
                ):
                    httpx.get(url + "/healthz", timeout=1)
                results = [f.result(timeout=30) for f in streams]
            # uvicorn re-raises SIGTERM once drained, so the exit is by that signal (or 0).
            assert server.wait(timeout=30) in (0, -signal.SIGTERM)
            for _, body in results:
                assert body.rstrip().endswith(b"data: [DONE]")  # finished, not cut
            reader = LogReader(engine)
            for index, _ in results:
                assert b'"outcome":"forwarding"' in reader.entry(index)
        finally:
            server.kill()
            server.wait()
            engine.dispose()


def test_kill_9_under_load_leaves_no_answer_without_its_entry(
    instance: tuple[Settings, Path],
) -> None:
    """kill -9 of `clearance serve` in the middle of a load: every 200 a client received names
    an audit index whose entry is in the log (no response went out before its entry was
    durable), and the log still verifies up to where the integrator got."""
    settings, config = instance
    with serve_in_thread(demo_upstream_app(chunk_delay=0.0), lifespan="off") as upstream:
        engine = connect(settings.database_url)
        key = seed(engine, settings, upstream)["alice@demo.test"]
        server, base = start_serve(config)
        url = f"{base}/v1/chat/completions"
        body = {"model": "fable-4", "messages": [{"role": "user", "content": "hi"}]}
        auth = {"authorization": f"Bearer {key}"}
        answered: list[int] = []
        many = threading.Event()
        stop = threading.Event()

        def client() -> None:
            with httpx.Client(timeout=10) as http:
                while not stop.is_set():
                    try:
                        reply = http.post(url, json=body, headers=auth)
                    except httpx.TransportError:
                        return  # the server is gone
                    if reply.status_code == 200:
                        answered.append(int(reply.headers["clearance-audit-index"]))
                        if len(answered) >= 200:
                            many.set()

        try:
            threads = [threading.Thread(target=client) for _ in range(8)]
            for t in threads:
                t.start()
            assert many.wait(60), "the load never got going"
            server.kill()  # mid-load: requests are committing and in flight
            server.wait()
            stop.set()
            for t in threads:
                t.join(30)
            assert answered
            reader = LogReader(engine)
            for index in answered:
                assert b'"outcome":"forwarding"' in reader.entry(index)
        finally:
            stop.set()
            server.kill()
            server.wait()
            engine.dispose()
