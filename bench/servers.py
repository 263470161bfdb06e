"""Which ASGI server the gateway runs on, chosen by measurement (issue 13, item 4).

    .venv/bin/python -m bench.servers [--duration 6] [--warmup 1]

The bare pass-through (bench/passthrough.py) under uvicorn (uvloop + httptools, what
`clearance serve` runs) and under granian (Rust HTTP, ASGI interface, uvloop), one worker each on
CPU 1, against the same raw-ASGI upstream, in one run; non-streaming at concurrency 1 and 32.
granian is not a dependency of Clearance: install it into the environment to compare
(`uv pip install granian`); without it only uvicorn is measured.

Measured here on 2026-12-07 (granian 2.8.9, uvicorn from uv.lock), req/s and p50:
uvicorn c=32 4,861 req/s, c=1 p50 0.39 ms; granian c=32 4,613 (4,419 with --runtime-mode st),
c=1 p50 0.52 ms. uvicorn stays.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench.gateway import (
    HERE,
    Load,
    free_port,
    on_proxy_cpu,
    process,
    wrk,
)
from bench.passthrough import UPSTREAM_ENV


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    granian = Path(sys.executable).parent / "granian"
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        up_port = free_port()
        upstream = f"http://127.0.0.1:{up_port}"
        me = [sys.executable, str(HERE / "gateway.py"), "--serve-upstream", str(up_port)]
        stack.enter_context(process(me, upstream + "/v1/models"))
        servers: dict[str, str] = {}
        port = free_port()
        argv = [sys.executable, str(HERE / "passthrough.py"), "--port", str(port)]
        argv += ["--upstream", upstream]
        stack.enter_context(process(on_proxy_cpu(argv), f"http://127.0.0.1:{port}/v1/models"))
        servers["uvicorn"] = f"http://127.0.0.1:{port}"
        if granian.exists():
            port = free_port()
            argv = [str(granian), "--interface", "asgi", "--factory", "--loop", "uvloop"]
            argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
            argv += ["--working-dir", str(HERE), "passthrough:from_environment"]
            env = {**os.environ, UPSTREAM_ENV: upstream}
            stack.enter_context(
                process(on_proxy_cpu(argv), f"http://127.0.0.1:{port}/v1/models", env=env)
            )
            servers["granian"] = f"http://127.0.0.1:{port}"
        else:
            print("granian is not installed: measuring uvicorn only")
        load = Load("openai", False)
        script = Path(tmp) / "load.lua"
        print(f"{'server':<10}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
        for conns in (1, 32):
            for name, url in servers.items():
                wrk(url, load, conns, args.warmup, script)
                got = wrk(url, load, conns, args.duration, script)
                print(f"{name:<10}{conns:>6}{got.rps:>10,.0f}{got.p50_ms:>9.2f}{got.p99_ms:>9.2f}")


if __name__ == "__main__":
    main()
