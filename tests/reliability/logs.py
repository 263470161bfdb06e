"""Helpers shared by the reliability tests and bench/reliability.py: settings, entries, checks.

`check_log` is the offline check run after every crash or fault: the stored log is gap-free,
holds every acknowledged entry with the same bytes, its root rebuilt from the leaves equals the
latest checkpoint once integrated, and that checkpoint extends the one kept before the crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.audit import entries, merkle
from clearance.audit.checkpoint import Checkpoint, open_checkpoint
from clearance.audit.keys import generate_signing_key, load_signer
from clearance.audit.service import AuditLog
from clearance.audit.tables import audit_checkpoints, audit_entries, audit_tree
from clearance.audit.verify import verify_log
from clearance.config import AuditSettings

ORIGIN = "reliability.clearance.local/audit"


def make_settings(directory: Path, interval: float = 0.05) -> AuditSettings:
    key = directory / "audit-signing.key"
    if not key.exists():
        key.write_text(generate_signing_key(ORIGIN) + "\n")
    return AuditSettings(signing_key_file=key, origin=ORIGIN, checkpoint_interval_seconds=interval)


FIXED = datetime(2026, 1, 1, tzinfo=UTC)


def entry(tag: str, seq: int) -> bytes:
    """A small, schema-valid entry; `tag` names the writer (and cycle) that appended it."""
    return entries.admin_action(
        actor=f"writer:{tag}", action="test.append", target=str(seq), details={}, time=FIXED
    )


def stored_entries(engine: Engine) -> dict[int, bytes]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audit_entries.c.idx, audit_entries.c.entry)).all()
    return {int(i): bytes(e) for i, e in rows}


def stored_checkpoints(engine: Engine) -> list[tuple[int, bytes]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_checkpoints.c.size, audit_checkpoints.c.root).order_by(
                audit_checkpoints.c.size
            )
        ).all()
    return [(int(s), bytes(r)) for s, r in rows]


@dataclass(frozen=True, slots=True)
class LogCheck:
    size: int  # entries stored
    lost: int  # acknowledged entries missing or changed
    checkpoint: Checkpoint  # the latest, after integrating everything


def _outlive_killed_integrators(engine: Engine) -> None:
    """PostgreSQL: wait for the tree row's lock. A SIGKILLed writer's backend holds it until the
    server sees the connection gone, and an integrator skips a held tree row (SKIP LOCKED): the
    restarted one would then sign nothing, which is right for a live peer but not what is checked
    here. A CI run caught that window once."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL lock_timeout = '30s'"))
        conn.execute(sa.select(audit_tree.c.size).where(audit_tree.c.id == 1).with_for_update())


def check_log(
    engine: Engine,
    settings: AuditSettings,
    acked: dict[int, bytes],
    kept: Checkpoint | None = None,
) -> LogCheck:
    """Restart on the stored state, integrate, and check it; raise AssertionError if broken."""
    _outlive_killed_integrators(engine)
    rows = stored_entries(engine)
    assert sorted(rows) == list(range(len(rows))), "the stored log has a gap"
    lost = sum(1 for i, e in acked.items() if rows.get(i) != e)
    verifier = load_signer(settings.signing_key_file).verifier
    log = AuditLog(engine, settings)  # a restarted process resumes from the stored state
    try:
        log.integrate()
        latest = open_checkpoint(log.reader.checkpoint(), verifier, ORIGIN)
        if kept is not None and kept.size > 0:
            # RFC 9162 §2.1.4.2: the new checkpoint extends the one kept before the crash.
            _, proof = log.reader.consistency_proof(kept.size, latest.size)
            merkle.verify_consistency(kept.size, latest.size, kept.root, latest.root, proof)
    finally:
        log.close()
    leaves = [rows[i] for i in range(len(rows))]
    assert latest.size == len(rows), "the latest checkpoint does not cover every stored entry"
    assert merkle.MemoryTree(leaves).root() == latest.root, "rebuilt root != checkpoint root"
    assert verify_log(engine, verifier, ORIGIN).size == len(rows)
    return LogCheck(size=len(rows), lost=lost, checkpoint=latest)
