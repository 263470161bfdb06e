"""Micro-benchmarks of the request path's steps, each beside what it replaced, in one run
(issue 13, item 3).

    .venv/bin/python -m bench.request_path [--seconds 1.0]

- the decision entry: `entries.access_decision` (the reference encoding, what every request
  paid before) against `entries.AccessEncoder` (a cached prefix, the time per request);
- its timestamp: `rfc3339()` (strftime) against `utc_now_rfc3339()`;
- the client's country: parsing and looking the address up each time against the per-address
  cache;
- the decision counter: `labels(...).inc()` against the cached child (`Metrics.decided`);
- the hand-off to the durable commit, on a real SQLite file (WAL, fsync per commit): the previous
  group commit (a drain task per burst and an executor hop per batch, re-created here as the
  baseline) against `GroupCommitter.submit` (one committer thread, one loop callback per batch),
  at 1 and 32 concurrent appenders.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.audit import fresh

from clearance.audit import entries
from clearance.audit.keys import generate_signing_key, load_signer
from clearance.audit.service import AuditLog
from clearance.config import AuditSettings
from clearance.decision.metrics import Metrics
from clearance.net.client import country_of

FIELDS: dict[str, object] = dict(
    subject="sub_" + "1" * 32,
    key_id="key_00000001",
    surface="openai",
    endpoint="/v1/chat/completions",
    stream=False,
    model_requested="fable-4",
    model_served="fable-4",
    effect="allow",
    rules=("allow-us-persons",),
    policy_hash="sha256:" + "a" * 64,
    facts_digest="sha256:" + "b" * 64,
    facts_version="7",
    list_versions={"ofac_sdn": "2025-01-01", "csl": "2025-01-02"},
    action="inference",
    ip_country="US",
    outcome="forwarding",
    status=None,
    reason=None,
)


def per_call(fn: Callable[[], object], seconds: float) -> float:
    """Microseconds per call, from as many calls as fit in `seconds`."""
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(1000):
            fn()
        n += 1000
    return elapsed / n * 1e6


def row(step: str, before: float, after: float, unit: str = "µs") -> None:
    print(f"{step:<44}{before:>10.2f}{after:>10.2f} {unit:<6}{before / after:>6.1f}x")


class PreviousCommitter:
    """The group commit as it was before this change: a drain task per burst of appends, each
    batch handed to a one-thread executor and awaited (the baseline for `GroupCommitter`)."""

    def __init__(self, commit: Callable[[Sequence[bytes]], list[int]]) -> None:
        self._commit = commit
        self._pending: list[tuple[bytes, asyncio.Future[int]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(1)

    async def append(self, entry: bytes) -> int:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._pending.append((entry, future))
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending[:512], self._pending[512:]
                indices = await loop.run_in_executor(
                    self._executor, self._commit, [e for e, _ in batch]
                )
                for (_, future), index in zip(batch, indices, strict=True):
                    future.set_result(index)
        finally:
            self._drainer = None

    def close(self) -> None:
        self._executor.shutdown()


async def _appends(append: Callable[[bytes], object], concurrency: int, total: int) -> float:
    entry = entries.AccessEncoder().encode(**FIELDS)  # type: ignore[arg-type]

    async def one(n: int) -> None:
        for _ in range(n):
            await append(entry)  # type: ignore[misc]

    start = time.perf_counter()
    await asyncio.gather(*(one(total // concurrency) for _ in range(concurrency)))
    return (time.perf_counter() - start) / total * 1e6


def commit_handoff(directory: Path, concurrency: int, total: int) -> tuple[float, float]:
    origin = "bench.clearance.local/path"
    key = directory / "key"
    if not key.exists():
        key.write_text(generate_signing_key(origin))
    settings = AuditSettings(origin=origin, signing_key_file=key, batch_max_entries=512)
    figures = []
    for name in ("previous", "now"):
        engine = fresh(None, directory, f"{name}-{concurrency}")
        log = AuditLog(engine, settings, signer=load_signer(key))
        log.append(b"warm")  # durability checks and the connection, out of the timing
        previous = PreviousCommitter(log.append_many)
        append = previous.append if name == "previous" else log.sequencer.append
        figures.append(asyncio.run(_appends(append, concurrency, total)))
        previous.close()
        log.close()
        engine.dispose()
    return figures[0], figures[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per CPU micro-benchmark")
    parser.add_argument("--appends", type=int, default=3200, help="per commit measurement")
    args = parser.parse_args()
    print(f"{'step':<44}{'before':>10}{'after':>10}{'':7}{'gain':>6}")
    encoder = entries.AccessEncoder()
    row(
        "decision entry (encode)",
        per_call(lambda: entries.access_decision(**FIELDS), args.seconds),  # type: ignore[arg-type]
        per_call(lambda: encoder.encode(**FIELDS), args.seconds),  # type: ignore[arg-type]
    )
    row(
        "entry timestamp",
        per_call(entries.rfc3339, args.seconds),
        per_call(entries.utc_now_rfc3339, args.seconds),
    )
    row(
        "client country",
        per_call(lambda: country_of.__wrapped__("8.8.8.8"), args.seconds),
        per_call(lambda: country_of("8.8.8.8"), args.seconds),
    )
    metrics = Metrics()
    row(
        "decision counter",
        per_call(lambda: metrics.decisions.labels("allow", "allow-us").inc(), args.seconds),
        per_call(lambda: metrics.decided("allow", "allow-us"), args.seconds),
    )
    with tempfile.TemporaryDirectory(prefix="clearance-bench-") as tmp:
        for concurrency in (1, 32):
            before, after = commit_handoff(Path(tmp), concurrency, args.appends)
            row(f"durable append, {concurrency} concurrent (per entry)", before, after)


if __name__ == "__main__":
    main()
