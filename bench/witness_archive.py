"""Witnesses and the archive: what they cost the log, each against its baseline in the same run.

    .venv/bin/python -m bench.witness_archive [--entries N] [--rounds N]

- Witnessing: one checkpoint signed (`integrate`) alone, then signed and cosigned by two
  witnesses of our own over HTTP on localhost (consistency proof, add-checkpoint, verify and
  store the cosignature), per round of 1,000 new entries.
- Archive: `audit verify` of an N-entry log read from the database, then the same log after
  `audit archive --prune` read from the archive directory; and the database's size before and
  after the prune.
"""

from __future__ import annotations

import argparse
import dataclasses
import sqlite3
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.audit import ORIGIN, sample

from clearance.audit.archive import DirectoryArchive, archive
from clearance.audit.cosignature import Cosigner, generate_witness_key
from clearance.audit.keys import NoteSigner, generate_signing_key
from clearance.audit.service import AuditLog
from clearance.audit.verify import verify_log
from clearance.config import AuditSettings
from clearance.net.serving import serve_in_thread
from clearance.store import connect, migrate
from clearance.witness.server import Witness, WitnessState, witness_app


def _ms(samples: list[float]) -> str:
    return f"p50 {statistics.median(samples) * 1000:.1f} ms, max {max(samples) * 1000:.1f} ms"


def _size(path: Path) -> int:
    """The database's size once its write-ahead log is folded in."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return path.stat().st_size


def witnessing(directory: Path, rounds: int) -> None:
    key_file = directory / "w-log.key"
    key_file.write_text(generate_signing_key(ORIGIN) + "\n")
    verifier = NoteSigner.from_text(key_file.read_text()).verifier
    with ExitStack() as stack:
        tables = []
        for n in (1, 2):
            cosigner = Cosigner.from_text(generate_witness_key(f"bench.witness/w{n}"))
            state = WitnessState(directory / f"w{n}.db")
            stack.callback(state.close)
            url = stack.enter_context(
                serve_in_thread(witness_app(Witness(cosigner, {ORIGIN: [verifier]}, state)))
            )
            tables.append({"url": url, "vkey": cosigner.verifier.text})
        engine = connect(f"sqlite:///{directory / 'witnessed.db'}")
        migrate(engine)
        base = AuditSettings(signing_key_file=key_file, origin=ORIGIN)
        settings = dataclasses.replace(base, witnesses=tuple(tables), witness_quorum=2)
        log = AuditLog(engine, settings)
        stack.callback(log.close)
        signed, cosigned = [], []
        n = 0
        for _ in range(rounds):
            log.append_many([sample(i) for i in range(n, n + 1000)])
            n += 1000
            started = time.perf_counter()
            log.integrate()
            signed.append(time.perf_counter() - started)
            started = time.perf_counter()
            assert log.witnessing.round() == 0
            cosigned.append(time.perf_counter() - started)
        print(f"witnessing, {rounds} rounds of 1,000 entries, SQLite, two witnesses on localhost:")
        print(f"  sign a checkpoint (baseline):            {_ms(signed)}")
        print(f"  then have two witnesses cosign it:       {_ms(cosigned)}")


def archiving(directory: Path, entries: int) -> None:
    key_file = directory / "a-log.key"
    key_file.write_text(generate_signing_key(ORIGIN) + "\n")
    verifier = NoteSigner.from_text(key_file.read_text()).verifier
    path = directory / "archived.db"
    engine = connect(f"sqlite:///{path}")
    migrate(engine)
    settings = AuditSettings(signing_key_file=key_file, origin=ORIGIN)
    log = AuditLog(engine, settings)
    for start in range(0, entries, 10_000):
        log.append_many([sample(i) for i in range(start, min(entries, start + 10_000))])
    log.integrate()
    log.close()
    started = time.perf_counter()
    verify_log(engine, verifier, ORIGIN)
    from_db = time.perf_counter() - started
    engine.dispose()
    before = _size(path)
    store = DirectoryArchive(directory / "archive")
    started = time.perf_counter()
    report = archive(engine, store, prune=True)
    took = time.perf_counter() - started
    engine.dispose()
    with sqlite3.connect(path) as db:  # outside SQLAlchemy: its SQLite connections begin at once
        db.execute("VACUUM")
    after = _size(path)
    started = time.perf_counter()
    verify_log(engine, verifier, ORIGIN, archive=store)
    from_archive = time.perf_counter() - started
    engine.dispose()
    print(f"archive, {entries:,} entries, SQLite:")
    print(
        f"  archive --prune: {took:.2f} s ({report.bundles} bundles); database "
        f"{before / 1e6:.1f} MB -> {after / 1e6:.1f} MB after VACUUM"
    )
    print(f"  audit verify, entries in the database (baseline): {from_db:.2f} s")
    print(f"  audit verify, {report.pruned_below:,} entries from the archive: {from_archive:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        witnessing(Path(tmp), args.rounds)
        archiving(Path(tmp), args.entries)


if __name__ == "__main__":
    main()
