"""`clearance serve --workers 2`: a suspension from another process reaches every worker
within a second, and every worker shares one gap-free audit log."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from clearance.config import Settings
from clearance.demo.run import free_port, seed
from clearance.demo.upstream import demo_upstream_app
from clearance.net.serving import serve_in_thread
from clearance.store import connect

CLEARANCE = str(Path(sys.executable).parent / "clearance")


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
                if {r.headers["clearance-model-served"] for r in after} == {"fable-4"}:
                    break
                assert time.monotonic() < deadline, "a worker still serves a suspended model"
            indices = [int(r.headers["clearance-audit-index"]) for r in after]
            assert len(set(indices)) == len(indices)  # one log, no index given twice
        finally:
            server.terminate()
            server.wait(timeout=30)
