"""A consistency auditor polls /audit/checkpoint every 100 ms while writers append: sizes only
grow, one root per size, each checkpoint consistent with the previous (5 s here, 60 s in
bench/reliability.py). And the auditor does catch a log that forks under it."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy.engine import Engine
from starlette.types import ASGIApp, Receive, Scope, Send

from clearance.audit.keys import NoteVerifier
from clearance.audit.routes import audit_app
from clearance.audit.service import AuditLog
from clearance.config import AuditSettings
from clearance.net.serving import serve_in_thread
from clearance.store import connect, migrate
from tests.reliability.auditor import ConsistencyAuditor
from tests.reliability.load import served_log_under_load
from tests.reliability.logs import ORIGIN, entry

SECONDS = 5.0


def test_checkpoints_only_extend_under_load(
    db_url: str, audit_settings: AuditSettings, verifier: NoteVerifier
) -> None:
    with (
        served_log_under_load(db_url, audit_settings) as (base, log),
        httpx.Client(base_url=base) as client,
    ):
        report = ConsistencyAuditor(client, verifier, ORIGIN).run(SECONDS)
        head, _ = log.reader.sizes()
    assert report.violations == []
    assert report.polls >= SECONDS / 0.1 * 0.8
    assert len(report.roots) >= 10 and report.proofs >= 9  # the log grew all along
    assert head > max(report.roots)


class Switch:
    """Serves one log, then another: an operator swapping in a rewritten history."""

    def __init__(self, *apps: ASGIApp) -> None:
        self.apps, self.current = apps, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.apps[self.current](scope, receive, send)


def _log(path: Path, settings: AuditSettings, tag: str, sizes: list[int]) -> Engine:
    """A log signed with the operator's key at each of `sizes`."""
    engine = connect(f"sqlite:///{path}")
    migrate(engine)
    log, done = AuditLog(engine, settings), 0
    for size in sizes:
        log.append_many([entry(tag, i) for i in range(done, size)])
        log.integrate()
        done = size
    log.close()
    return engine


def test_the_auditor_catches_a_fork(
    tmp_path: Path, audit_settings: AuditSettings, verifier: NoteVerifier
) -> None:
    engines = [
        _log(tmp_path / "honest.db", audit_settings, "honest", [10]),
        _log(tmp_path / "same.db", audit_settings, "forged", [10]),
        _log(tmp_path / "longer.db", audit_settings, "forged", [10, 12]),
    ]
    switch = Switch(*(audit_app(e) for e in engines))
    try:
        with serve_in_thread(switch, lifespan="off") as base, httpx.Client(base_url=base) as client:
            for forged, violation in [
                (1, "two roots for tree size 10"),
                (2, "size 12 does not extend 10"),
            ]:
                switch.current = 0
                auditor = ConsistencyAuditor(client, verifier, ORIGIN)
                auditor.poll()
                switch.current = forged
                auditor.poll()
                assert auditor.report.violations == [violation]
    finally:
        for engine in engines:
            engine.dispose()
