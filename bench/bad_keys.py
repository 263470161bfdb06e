"""A flood of bad API keys: what it costs the log and the people with good keys, against the
previous release in the same run.

    .venv/bin/python bench/bad_keys.py [--baseline-rev REV] [--duration 10]

Three gateways, one after the other, each on a fresh SQLite instance (WAL, fsync per commit)
with one worker on CPU 1: the baseline revision (default: the commit before refusals were
counted), checked out into a temporary git worktree and run from its own sources; this tree
with `bad_keys_per_client = 0` (counting only); and this tree with the default limit. For each:
wrk floods `--flood-conns` connections of unknown keys for `--duration` seconds (req/s, p50,
p99, audit entries appended, database growth); then the same flood runs while a second wrk
sends good-key requests on 4 connections, whose req/s and latency are what a paying user sees
during an attack. wrk, the upstream and this script share CPU 0. Needs `wrk` and `git`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.gateway import (
    LOAD_CPU,
    Load,
    Result,
    check,
    clearance_instance,
    free_port,
    on_proxy_cpu,
    print_load,
    process,
    wrk,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BASELINE_REV = "be5dcc7"  # main before refusals were counted (issue 12, item 5)


@dataclass(frozen=True, slots=True)
class Build:
    name: str
    src: Path  # the `src` directory the gateway runs from
    settings: str  # TOML lines appended to [gateway]


def clearance(build: Build, *args: str) -> list[str]:
    """`clearance ARGS` run from `build`'s sources with this interpreter."""
    code = "import sys; from clearance.cli.app import main; sys.argv[0] = 'clearance'; main()"
    return [sys.executable, "-c", code, *args]


def env_for(build: Build) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(build.src)}


@contextmanager
def serving(build: Build, directory: Path, upstream: str) -> Iterator[tuple[str, str, Path]]:
    env = env_for(build)
    config, key = clearance_instance(
        directory, upstream, command=clearance(build), env=env, gateway=build.settings
    )
    port = free_port()
    argv = [*clearance(build, "serve", "--config", str(config)), "--port", str(port)]
    argv += ["--workers", "1"]
    with process(on_proxy_cpu(argv), f"http://127.0.0.1:{port}/healthz", env):
        yield f"http://127.0.0.1:{port}", key, directory / "clearance.db"


def entries(database: Path) -> tuple[int, int]:
    """(audit entries, database bytes including its WAL)."""
    with sqlite3.connect(database) as conn:
        count = int(conn.execute("SELECT count(*) FROM audit_entries").fetchone()[0])
    size = sum(p.stat().st_size for p in database.parent.glob(database.name + "*"))
    return count, size


def row(label: str, got: Result, extra: str = "") -> None:
    print(f"  {label:<34}{got.rps:>9,.0f}{got.p50_ms:>9.2f}{got.p99_ms:>9.2f}  {extra}", flush=True)


def run(build: Build, workdir: Path, upstream: str, args: argparse.Namespace) -> None:
    print(f"\n{build.name}", flush=True)
    slug = "".join(c if c.isalnum() else "-" for c in build.name)
    with serving(build, workdir / slug, upstream) as (url, key, database):
        good, bad = Load("openai", False, key), Load("openai", False, "sk-clr-not-a-key")
        check(url, good)
        wrk(url, good, 4, args.warmup, workdir / "good.lua")
        alone = wrk(url, good, 4, args.duration, workdir / "good.lua")
        row("good keys alone, c=4", alone)
        before = entries(database)
        flood = wrk(url, bad, args.flood_conns, args.duration, workdir / "bad.lua")
        after = entries(database)
        grown = f"+{after[0] - before[0]:,} entries, +{(after[1] - before[1]) / 1e6:.1f} MB"
        row(f"bad keys, c={args.flood_conns}", flood, grown)
        results: dict[str, Result] = {}
        attack = threading.Thread(
            target=lambda: results.setdefault(
                "flood", wrk(url, bad, args.flood_conns, args.duration + 1, workdir / "bad2.lua")
            )
        )
        attack.start()
        during = wrk(url, good, 4, args.duration, workdir / "good2.lua")
        attack.join()
        row("good keys during the flood, c=4", during, f"({results['flood'].rps:,.0f} bad/s)")


def worktree(stack: ExitStack, rev: str, workdir: Path) -> Path:
    path = workdir / "baseline-tree"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev],
        check=True,
        capture_output=True,
    )
    stack.callback(
        subprocess.run,
        ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
        check=False,
        capture_output=True,
    )
    return path / "src"


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-rev", default=BASELINE_REV)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--flood-conns", type=int, default=32)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {LOAD_CPU})
    print(
        f"Bad-key flood: wrk -t1, {args.duration:g} s per cell; upstream and wrk on CPU "
        f"{LOAD_CPU}, the gateway (one worker, SQLite, fsync per commit) on the other"
    )
    print_load("before")
    with tempfile.TemporaryDirectory(prefix="clearance-badkeys-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        up_port = free_port()
        upstream = f"http://127.0.0.1:{up_port}"
        serve_up = [sys.executable, str(HERE / "gateway.py"), "--serve-upstream", str(up_port)]
        stack.enter_context(process(serve_up, upstream + "/v1/models"))
        builds = [
            Build(f"baseline {args.baseline_rev}", worktree(stack, args.baseline_rev, workdir), ""),
            Build("this tree, counting only", ROOT / "src", "bad_keys_per_client = 0\n"),
            Build("this tree, default limit (20/60 s)", ROOT / "src", ""),
        ]
        print(f"  {'':<34}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
        for build in builds:
            run(build, workdir, upstream, args)
    print_load("after")


if __name__ == "__main__":
    main()
