"""Reliability figures, each printed beside a baseline measured in the same run.

    .venv/bin/python bench/reliability.py [--cycles 20] [--auditor-seconds 60] [--postgres URL]
    .venv/bin/python bench/reliability.py --gateway [--stalled 20] [--streams 1000]

Audit log (issue 7, items 1-2):
  kill cycles    writers + random SIGKILL + restart on SQLite and PostgreSQL: cycles run and
                 acknowledged entries lost (must be 0); baseline: time to the first
                 acknowledgement from a cold start vs. a restart after SIGKILL
  syscall faults strace EIO / SIGKILL at every fdatasync (and sampled pwrite64, fsync, rename)
                 of a SQLite writer: runs and offline-check failures (must be 0); baseline: the
                 fault-free run (acks not preceded by an fdatasync, must be 0)
  auditor        a consistency auditor polling /audit/checkpoint every 100 ms during load:
                 violations (must be 0); baseline: the same poll's latency on an idle log

Gateway (issue 7, item 3; `--gateway` runs only these), one `clearance serve` worker each:
  stalled        N clients that stop reading a stream the upstream floods: worker RSS per
                 stalled stream (must be < 10 MB); baseline: the idle worker's RSS
  open streams   1,000 open SSE streams, two rounds: RSS growth (must be < +200 MB) and RSS after
                 they close (the first burst's allocator retention, then no growth round on
                 round); baseline: the idle worker's RSS (bench/gateway_resources.py alone)
  slowloris      a probe's p99 while 500 connections trickle headers (must be < 500 ms) and when
                 the header deadline cut them; baseline: the probe's p99 with no slowloris

Each figure is one function taking the scratch directory and the database URLs; `main` runs
them all, so other figures (the gateway's) can be added as functions beside these.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa

from clearance.audit.keys import load_signer
from clearance.audit.routes import audit_app
from clearance.audit.service import AuditLog
from clearance.net.serving import serve_in_thread
from clearance.store import connect, migrate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the harnesses live beside the tests, in tests/reliability

from bench.gateway_resources import (  # noqa: E402
    MB,
    Slowloris,
    gateway_worker,
    open_stream_figures,
    open_streams,
    probe_latencies,
)
from tests.reliability.auditor import ConsistencyAuditor  # noqa: E402
from tests.reliability.crash import kill_cycles  # noqa: E402
from tests.reliability.faults import (  # noqa: E402
    STRACE,
    call_numbers,
    fresh_copy,
    offline_problems,
    run_writer,
)
from tests.reliability.load import served_log_under_load  # noqa: E402
from tests.reliability.logs import ORIGIN, entry, make_settings  # noqa: E402

SAMPLED = 12  # pwrite64 call numbers injected per action (fdatasync: every call)


@contextmanager
def database(kind: str, workdir: Path, postgres: str) -> Iterator[str]:
    """A fresh migrated database URL: a SQLite file or a throwaway PostgreSQL schema."""
    if kind == "SQLite":
        url = f"sqlite:///{workdir / f'{uuid.uuid4().hex[:8]}.db'}"
        engine = connect(url)
        migrate(engine)
        engine.dispose()
        yield url
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = connect(postgres)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in postgres else "?"
    url = f"{postgres}{sep}options=-csearch_path%3D{schema}"
    engine = connect(url)
    migrate(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def postgres_up(url: str) -> bool:
    engine = connect(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def kill_cycle_figures(workdir: Path, kinds: list[str], postgres: str, cycles: int) -> None:
    print(f"\n== kill cycles: 2 writers + random SIGKILL + restart, {cycles} cycles")
    settings = make_settings(workdir)
    for kind in kinds:
        with database(kind, workdir, postgres) as url:
            started = time.monotonic()
            report = kill_cycles(url, settings, cycles, seed=2024, workdir=workdir)
            seconds = time.monotonic() - started
        restarts = report.first_ack[1:] or [0.0]
        print(
            f"{kind:<11} cycles run {report.cycles}, acknowledged {report.acked}, "
            f"acknowledged entries lost {report.lost} (must be 0), stored {report.size}, "
            f"{seconds:.1f} s"
        )
        print(
            f"{'':<11} first ack after restart p50 {statistics.median(restarts) * 1e3:.0f} ms"
            f"   (baseline, cold start: {report.first_ack[0] * 1e3:.0f} ms)"
        )


def fault_figures(workdir: Path) -> None:
    print("\n== syscall faults: strace inject on a SQLite writer (12 appends, 3 checkpoints)")
    if STRACE is None:
        print("strace not installed: skipped (apt-get install strace)")
        return
    settings = make_settings(workdir)
    template = workdir / "template.db"
    engine = connect(f"sqlite:///{template}")
    migrate(engine)
    engine.dispose()
    base = run_writer(
        fresh_copy(template, workdir / "base.db"), settings, "fdatasync", "EIO", 0, workdir
    )
    base_problems = offline_problems(base, workdir / "base.db", settings, workdir)
    print(
        f"baseline (no fault): acks {len(base.acks())}, acks with no fdatasync before them "
        f"{base.unsynced_acks()}, offline-check failures {len(base_problems)}"
    )
    for syscall in ("fdatasync", "pwrite64", "fsync", "rename"):
        numbers = call_numbers(base, syscall)
        if syscall != "fdatasync" and len(numbers) > SAMPLED:
            step = len(numbers) / SAMPLED
            numbers = [numbers[int(i * step)] for i in range(SAMPLED)]
        for action in ("EIO", "KILL"):
            runs = hit = failures = ignored = 0
            for when in numbers or [1]:
                db = fresh_copy(template, workdir / "fault.db")
                run = run_writer(db, settings, syscall, action, when, workdir)
                problems = offline_problems(run, db, settings, workdir)
                runs, hit = runs + 1, hit + run.injected
                failures += bool(problems)
                ignored += len(run.acked_after_failure(directory=True))
                for problem in problems:
                    print(f"  FAILED {syscall}:{action}:when={when}: {problem}")
            print(
                f"{syscall:<9} {action:<4} runs {runs:>2}, faults hit {hit:>2}, "
                f"offline-check failures {failures} (must be 0), "
                f"acks after a failed directory sync {ignored} (SQLite ignores those)"
            )


def _poll_latency(client: httpx.Client, seconds: float) -> list[float]:
    latencies = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        client.get("/checkpoint").raise_for_status()
        latencies.append(time.perf_counter() - started)
        time.sleep(0.1)
    return latencies


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3


def auditor_figures(workdir: Path, kinds: list[str], postgres: str, seconds: float) -> None:
    print(f"\n== consistency auditor: /audit/checkpoint every 100 ms for {seconds:.0f} s of load")
    settings = make_settings(workdir)
    verifier = load_signer(settings.signing_key_file).verifier
    for kind in kinds:
        with database(kind, workdir, postgres) as url:
            engine = connect(url)
            idle_log = AuditLog(engine, settings)
            idle_log.append_many([entry("idle", i) for i in range(100)])
            idle_log.integrate()
            idle_log.close()
            with serve_in_thread(audit_app(engine), lifespan="off") as base:
                with httpx.Client(base_url=base) as client:
                    idle = _poll_latency(client, min(5.0, seconds))
            engine.dispose()
            with served_log_under_load(url, settings) as (base, log):
                with httpx.Client(base_url=base) as client:
                    auditor = ConsistencyAuditor(client, verifier, ORIGIN)
                    started = time.monotonic()
                    report = auditor.run(seconds)
                    elapsed = time.monotonic() - started
                head, _ = log.reader.sizes()
        rate = (head - 100) / elapsed
        print(
            f"{kind:<11} polls {report.polls}, checkpoints seen {len(report.roots)}, consistency "
            f"proofs verified {report.proofs}, violations {len(report.violations)} (must be 0), "
            f"load ~{rate:,.0f} entries/s"
        )
        print(
            f"{'':<11} checkpoint poll p50 {_p(report.latencies, 0.5):.1f} ms, "
            f"p99 {_p(report.latencies, 0.99):.1f} ms   (baseline, idle log: p50 "
            f"{_p(idle, 0.5):.1f} ms, p99 {_p(idle, 0.99):.1f} ms)"
        )


def stalled_stream_figures(workdir: Path, clients: int) -> None:
    print(f"\n== {clients} clients that stop reading a flooding stream, one gateway worker")
    with gateway_worker(workdir) as worker:
        probe_latencies(worker, 1.0)  # warm-up
        idle = worker.settled_rss()
        socks = open_streams(worker, "flood", clients)
        stalled = worker.settled_rss()
        sent = worker.upstream_stats()["sent"]
        time.sleep(2.0)
        moved = worker.upstream_stats()["sent"] - sent  # what still flows while nobody reads
        for sock in socks:
            sock.close()
        left = worker.upstream_idle()
        after = worker.settled_rss()
    print(
        f"stalled RSS {stalled:.1f} MB, +{(stalled - idle) / clients:.2f} MB per stalled stream "
        f"(must be < 10)   (baseline, idle worker: {idle:.1f} MB)"
    )
    print(
        f"upstream sent {sent / clients / MB:.2f} MB per stream before backpressure held it, "
        f"{moved / MB:.2f} MB in the next 2 s; after the clients hung up: upstream streams "
        f"open {left} (must be 0), RSS {after:.1f} MB"
    )


def slowloris_figures(workdir: Path, connections: int, seconds: float) -> None:
    print(f"\n== probe latency while {connections} connections trickle headers ({seconds:.0f} s)")
    with gateway_worker(workdir) as worker:
        probe_latencies(worker, 1.0)
        quiet = probe_latencies(worker, seconds)
        with Slowloris(worker.url, connections) as attack:
            loud = probe_latencies(worker, seconds)
        cuts = sorted(attack.cut_after)
    print(
        f"probe p50 {_p(loud, 0.5):.1f} ms, p99 {_p(loud, 0.99):.1f} ms, max "
        f"{max(loud) * 1e3:.1f} ms over {len(loud)} probes (p99 must be < 500)   (baseline, no "
        f"slowloris: p50 {_p(quiet, 0.5):.1f} ms, p99 {_p(quiet, 0.99):.1f} ms)"
    )
    cut_at = f", median {statistics.median(cuts):.1f} s after opening" if cuts else ""
    print(f"slowloris connections cut by the header deadline: {len(cuts)}{cut_at}")


def gateway_figures(workdir: Path, args: argparse.Namespace) -> None:
    stalled_stream_figures(workdir, args.stalled)
    open_stream_figures(workdir, args.streams)
    slowloris_figures(workdir, args.slowloris, args.slowloris_seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--auditor-seconds", type=float, default=60.0)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--gateway", action="store_true", help="the gateway figures only")
    parser.add_argument("--stalled", type=int, default=20, help="clients that stop reading")
    parser.add_argument("--streams", type=int, default=1000, help="open SSE streams")
    parser.add_argument("--slowloris", type=int, default=500, help="slowloris connections")
    parser.add_argument("--slowloris-seconds", type=float, default=15.0)
    args = parser.parse_args()
    if args.gateway:
        with tempfile.TemporaryDirectory() as tmp:
            gateway_figures(Path(tmp), args)
        return
    kinds = ["SQLite"] + (["PostgreSQL"] if postgres_up(args.postgres) else [])
    if "PostgreSQL" not in kinds:
        print(f"PostgreSQL at {args.postgres} unreachable: SQLite only")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        kill_cycle_figures(workdir, kinds, args.postgres, args.cycles)
        fault_figures(workdir)
        auditor_figures(workdir, kinds, args.postgres, args.auditor_seconds)
        gateway_figures(workdir, args)


if __name__ == "__main__":
    main()
