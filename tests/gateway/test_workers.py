"""`clearance serve --workers 2`: a suspension from another process reaches every worker
within a second, and every worker shares one gap-free audit log."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx

from clearance.config import Settings
from clearance.demo.run import free_port, seed
from clearance.demo.upstream import demo_upstream_app
from clearance.net.serving import serve_in_thread
from clearance.store import connect
from tests.gateway.conftest import CLEARANCE, start_serve


def test_suspension_reaches_every_worker(instance: tuple[Settings, Path]) -> None:
    settings, config = instance
    with serve_in_thread(demo_upstream_app(chunk_delay=0.0), lifespan="off") as upstream:
        engine = connect(settings.database_url)
        key = seed(engine, settings, upstream)["alice@demo.test"]
        engine.dispose()
        port = free_port()
        server = subprocess.Popen(
            [CLEARANCE, "serve", "--config", str(config), "--port", str(port), "--workers", "2"],
            env={**os.environ, "CLEARANCE_CONFIG": str(config)},
        )
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        body = {"model": "fable-5", "messages": [{"role": "user", "content": "hi"}]}
        auth = {"authorization": f"Bearer {key}"}
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.post(url, json=body, headers=auth, timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "gateway did not start"
                time.sleep(0.2)
            # New connections each time: the kernel spreads them over both workers.
            served = {httpx.post(url, json=body, headers=auth).status_code for _ in range(20)}
            assert served == {200}
            subprocess.run(
                [
                    CLEARANCE,
                    "models",
                    "suspend",
                    "fable-5",
                    "--reason",
                    "drill",
                    "--config",
                    str(config),
                ],
                check=True,
                capture_output=True,
            )
            # Each worker's own poller picks the suspension up: wait (at most 2 s) until twenty
            # new connections in a row, spread over both workers, are all served the fallback.
            deadline = time.monotonic() + 2
            while True:
                after = [httpx.post(url, json=body, headers=auth) for _ in range(20)]
                # A request its worker allowed fable-5 just before the suspension reached it is
                # ended by the kill switch (451 model-suspended), never served by the model.
                for r in after:
                    assert r.status_code == 200 or (
                        r.status_code == 451 and r.json()["error"]["code"] == "model-suspended"
                    ), (r.status_code, r.text)
                if {r.headers.get("clearance-model-served") for r in after} == {"fable-4"}:
                    break
                assert time.monotonic() < deadline, "a worker still serves a suspended model"
            indices = [int(r.headers["clearance-audit-index"]) for r in after]
            assert len(set(indices)) == len(indices)  # one log, no index given twice
        finally:
            server.terminate()
            server.wait(timeout=30)


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _checkpoint_size(base: str) -> int:
    note = httpx.get(f"{base}/audit/checkpoint", timeout=5).text
    return int(note.splitlines()[1])


def test_the_integrator_runs_beside_the_workers(instance: tuple[Settings, Path]) -> None:
    """`clearance serve` signs checkpoints from a background process while its workers only
    append; stopping `serve` integrates what they appended last; a kill -9 of `serve` takes the
    background process with it."""
    settings, config = instance
    with serve_in_thread(demo_upstream_app(chunk_delay=0.0), lifespan="off") as upstream:
        engine = connect(settings.database_url)
        key = seed(engine, settings, upstream)["alice@demo.test"]
        engine.dispose()

        body = {"model": "fable-4", "messages": [{"role": "user", "content": "hi"}]}
        auth = {"authorization": f"Bearer {key}"}
        server, base = start_serve(config)
        try:
            indices = []
            for _ in range(5):
                reply = httpx.post(f"{base}/v1/chat/completions", json=body, headers=auth)
                assert reply.status_code == 200
                indices.append(int(reply.headers["clearance-audit-index"]))
            # One worker (uvicorn serves it in the `serve` process): the child is the
            # background process, which signs within its interval (1 s).
            deadline = time.monotonic() + 10
            while _checkpoint_size(base) <= max(indices):
                assert time.monotonic() < deadline, "no checkpoint covers the requests"
                time.sleep(0.1)
            last = httpx.post(f"{base}/v1/chat/completions", json=body, headers=auth)
            last_index = int(last.headers["clearance-audit-index"])
        finally:
            server.terminate()
            assert server.wait(timeout=60) == 0
        engine = connect(settings.database_url)
        try:
            with engine.connect() as conn:
                signed = conn.exec_driver_sql("SELECT max(size) FROM audit_checkpoints").scalar()
        finally:
            engine.dispose()
        assert signed is not None and signed > last_index  # integrated on the way out

        server, base = start_serve(config)
        helpers = _children(server.pid)
        assert helpers, "serve started no background process"
        server.kill()
        server.wait()
        # A bound on a busy machine, not a timing figure: the helpers notice within a second.
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in helpers):
            assert time.monotonic() < deadline, "the background process outlived serve"
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"
