"""Audit log figures: durable appends (SQLite, PostgreSQL), durability wait, verification.

    .venv/bin/python bench/audit.py [--entries N] [--verify-entries N] [--postgres URL]

Baselines measured in the same run: raw SHA-256 over the same entries, and one fsync'd SQLite
commit per entry. Targets (issue 3): >= 50,000 durable entries/s on SQLite with group commit;
p99 wait <= 5 ms at a steady 2,000 entries/s; a 1,000,000-entry log verified in <= 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.audit.entries import access_decision
from clearance.audit.keys import NoteSigner, generate_signing_key
from clearance.audit.service import AuditLog
from clearance.audit.verify import verify_log
from clearance.config import AuditSettings
from clearance.store import connect, migrate

ORIGIN = "bench.clearance.local/audit"


def sample(i: int) -> bytes:
    return access_decision(
        subject=f"sub_{i:032x}",
        surface="openai",
        endpoint="/v1/chat/completions",
        stream=False,
        facts_version="1",
        status=None,
        reason=None,
        model_requested="frontier-1",
        model_served="frontier-1",
        effect="allow",
        rules=["allow-us-persons"],
        policy_hash="sha256:" + "a" * 64,
        facts_digest="sha256:" + "b" * 64,
        list_versions={"ofac_sdn": "2025-01-01"},
        action="inference",
        ip_country="US",
        key_id=f"key_{i % 1000:08x}",
        outcome="forwarding",
    )


SCHEMAS: list[tuple[Engine, str]] = []


def fresh(url: str | None, directory: Path, name: str) -> Engine:
    """A new migrated database: a SQLite file, or a throwaway PostgreSQL schema."""
    if url is None:
        engine = connect(f"sqlite:///{directory / name}.db")
    else:
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        admin = connect(url)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        SCHEMAS.append((admin, schema))
        sep = "&" if "?" in url else "?"
        engine = connect(f"{url}{sep}options=-csearch_path%3D{schema}")
    migrate(engine)
    return engine


def drop_schemas() -> None:
    for admin, schema in SCHEMAS:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def baseline_sha256(entries: list[bytes]) -> float:
    start = time.perf_counter()
    for e in entries:
        hashlib.sha256(b"\x00" + e).digest()
    return len(entries) / (time.perf_counter() - start)


def baseline_fsync_each(engine: Engine, entries: list[bytes]) -> float:
    log = AuditLog(engine, SETTINGS)
    start = time.perf_counter()
    for e in entries:
        log.append(e)
    rate = len(entries) / (time.perf_counter() - start)
    log.close()
    return rate


async def _flood(log: AuditLog, entries: list[bytes], concurrency: int) -> float:
    queue = iter(entries)

    async def worker() -> None:
        for e in queue:
            await log.sequencer.append(e)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(entries) / (time.perf_counter() - start)


def group_commit(engine: Engine, entries: list[bytes]) -> tuple[float, float]:
    """(durable appends/s through the asyncio sequencer, integration entries/s)."""
    log = AuditLog(engine, SETTINGS)
    rate = asyncio.run(_flood(log, entries, concurrency=2048))
    start = time.perf_counter()
    log.integrate()
    integrate_rate = len(entries) / (time.perf_counter() - start)
    log.close()
    return rate, integrate_rate


async def _steady(log: AuditLog, per_second: int, seconds: float) -> list[float]:
    waits: list[float] = []
    tasks = []

    async def one(e: bytes) -> None:
        t = time.perf_counter()
        await log.sequencer.append(e)
        waits.append(time.perf_counter() - t)

    start, i = time.perf_counter(), 0
    while (now := time.perf_counter()) - start < seconds:
        due = int((now - start) * per_second)
        while i < due:
            tasks.append(asyncio.create_task(one(sample(i))))
            i += 1
        await asyncio.sleep(0.0005)
    await asyncio.gather(*tasks)
    return waits


def steady_wait(engine: Engine, per_second: int, seconds: float) -> tuple[float, float]:
    log = AuditLog(engine, SETTINGS)
    log.start()
    waits = asyncio.run(_steady(log, per_second, seconds))
    log.close()
    q = statistics.quantiles(waits, n=100)
    return q[49] * 1000, q[98] * 1000


def verify_speed(engine: Engine, n: int) -> float:
    log = AuditLog(engine, SETTINGS)
    entries = [sample(i) for i in range(n)]
    for k in range(0, n, 50_000):
        log.append_many(entries[k : k + 50_000])
    log.integrate()
    log.close()
    verifier = NoteSigner.from_text(KEY.read_text()).verifier
    start = time.perf_counter()
    assert verify_log(engine, verifier, ORIGIN).size == n
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--verify-entries", type=int, default=1_000_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clearance-bench-"))
    global KEY, SETTINGS
    KEY = tmp / "key"
    KEY.write_text(generate_signing_key(ORIGIN))
    SETTINGS = AuditSettings(signing_key_file=KEY, origin=ORIGIN, batch_max_entries=4096)
    entries = [sample(i) for i in range(args.entries)]
    print(f"entry size {len(entries[0])} bytes; {args.entries} entries; data in {tmp}")
    print(f"baseline  raw SHA-256 leaf hashing        {baseline_sha256(entries):>12,.0f} /s")
    each = baseline_fsync_each(fresh(None, tmp, "each"), entries[:1000])
    print(f"baseline  SQLite, one fsync'd commit each  {each:>12,.0f} /s")
    try:
        for label, url in (("SQLite", None), ("PostgreSQL", args.postgres)):
            rate, integ = group_commit(fresh(url, tmp, "gc"), entries)
            print(f"{label:<10} group commit, durable appends  {rate:>12,.0f} /s")
            print(f"{label:<10} integration (tiles + signing)  {integ:>12,.0f} /s")
            p50, p99 = steady_wait(fresh(url, tmp, "steady"), 2000, 5.0)
            print(f"{label:<10} wait at 2,000/s: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    finally:
        drop_schemas()
    seconds = verify_speed(fresh(None, tmp, "verify"), args.verify_entries)
    print(f"SQLite     verify {args.verify_entries:,} entries: {seconds:.2f} s")


KEY: Path
SETTINGS: AuditSettings

if __name__ == "__main__":
    main()
