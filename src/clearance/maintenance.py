"""Housekeeping that every worker runs in the background, every few minutes.

One pass (`purge_once`) deletes what nothing may use any more and erases what must not be kept:

- sign-in links expired (or used) more than a day ago (`portal.links.purge`);
- ended sessions (`portal.sessions.purge`);
- rate-limit windows older than the previous one (`portal.ratelimit.purge`);
- evidence images past `[identity] retention_days` (`identity.service.purge_expired`, the same
  function as `clearance identity purge`: each person whose images went gets an audit entry),
  except those under a legal hold (`audit.holds`), which stay and are logged as a count;
- the misuse guard's flagged excerpts past `[guard] excerpt_retention_days`
  (`guard.review.purge_excerpts`: one summary audit entry per pass that erased any);
- the CIP record's daily address rows past `[cip] retention_years`, except a held person's
  (`identity.cip.purge_addresses`: one summary audit entry per pass that erased any).

There is no leader: every worker (and host) runs the pass, because each step is idempotent and
safe to run concurrently. The deletes are plain conditional DELETEs; the evidence purge claims
each file with a conditional UPDATE, so exactly one worker erases and audits it.
`[portal] maintenance_minutes` sets the period (0: off); each wait is jittered by ±20% so that
workers started together drift apart instead of contending in lockstep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import astuple, dataclass
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from clearance.audit.entries import admin_action
from clearance.audit.sink import AuditSink
from clearance.config import Settings
from clearance.errors import ClearanceError, ConfigError
from clearance.guard import review as guard_review
from clearance.identity import cip
from clearance.identity import service as identity
from clearance.identity.vault import EvidenceVault
from clearance.portal import links, ratelimit, sessions
from clearance.screening.service import build_matcher, publish, rescreen_ownership
from clearance.screening.settings import thresholds
from clearance.store.tables import org_owners

log = logging.getLogger("clearance.maintenance")
ACTOR = "gateway:retention"  # who the evidence purge's audit entries name
TASK_NAME = "clearance-maintenance"
# Jitter from a generator of its own: drawing from the `random` module's shared one would move
# the state of whatever else in the process seeds or replays it (Hypothesis, in the test suite).
_jitter = random.Random()


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Purged:
    links: int
    sessions: int
    rate_windows: int
    evidence: int
    guard_excerpts: int = 0
    cip_addresses: int = 0


def purge_once(
    settings: Settings,
    engine: Engine,
    vault: EvidenceVault | None,
    audit: AuditSink,
    *,
    now: datetime,
) -> Purged:
    """One pass (blocking). Without a vault (no master key) evidence is left for the CLI."""
    with engine.begin() as conn:
        link_count = links.purge(conn, now=now)
        session_count = sessions.purge(conn, now=now)
        windows = ratelimit.purge(conn, now=now.timestamp())
    evidence = excerpts = 0
    if vault is not None:
        evidence = identity.purge_expired(
            engine,
            vault,
            audit,
            retention_days=settings.identity.retention_days,
            actor=ACTOR,
            now=now,
        )
        excerpts = guard_review.purge_excerpts(
            engine,
            vault,
            audit,
            retention_days=settings.guard.excerpt_retention_days,
            actor=ACTOR,
            now=now,
        )
    addresses = cip.purge_addresses(engine, settings.cip, now=now)
    if addresses:
        audit.append(
            admin_action(
                actor=ACTOR,
                action="identity.cip.purge",
                target="cip_addresses",
                details={"rows": addresses, "retention_years": settings.cip.retention_years},
            )
        )
    return Purged(link_count, session_count, windows, evidence, excerpts, addresses)


class Maintenance:
    """The loop around `purge_once` for one worker."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        audit: AuditSink,
        *,
        clock: Callable[[], datetime] = utc_now,
        vault: EvidenceVault | None = None,  # default: opened from [identity] on first use
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._audit = audit
        self._clock = clock
        self._vault = vault
        self._vault_refused = False
        self._ownership_day: date | None = None

    def run_once(self) -> Purged:
        self.ownership_once()
        return purge_once(
            self._settings, self._engine, self._open_vault(), self._audit, now=self._clock()
        )

    def ownership_once(self) -> int:
        """Once a UTC day, organisations' ownership again: a dated rule (the BIS Affiliates Rule
        and its suspension) may start or stop applying at midnight with no list changing.
        Returns how many organisations changed."""
        today = self._clock().date()
        if self._ownership_day == today:
            return 0
        self._ownership_day = today
        with self._engine.connect() as conn:
            if conn.execute(sa.select(org_owners.c.id).limit(1)).first() is None:
                return 0  # no declared owners: nothing to compute
        outbox: list[bytes] = []
        with self._engine.begin() as conn:
            matcher = build_matcher(conn, thresholds(self._settings))
            changed = rescreen_ownership(conn, matcher, outbox=outbox, day=today)
        publish(outbox, self._audit)
        return len(changed)

    def _open_vault(self) -> EvidenceVault | None:
        # Opened on first use, like the portal's verifier: an instance with no identity master
        # key still purges its links and sessions, and says once why evidence is left alone.
        if self._vault is None and not self._vault_refused:
            try:
                self._vault = EvidenceVault.open(self._settings.identity)
            except ConfigError as exc:
                self._vault_refused = True
                log.warning("evidence retention purge off: %s", exc.detail)
        return self._vault

    async def run(self, stop: asyncio.Event) -> None:
        """Pass, wait, repeat until `stop` is set; a failed pass is logged and retried later."""
        period = self._settings.portal.maintenance_minutes * 60
        while not stop.is_set():
            try:
                purged = await asyncio.to_thread(self.run_once)
            except (SQLAlchemyError, OSError) as exc:  # storage down: the next pass retries
                log.warning("maintenance pass failed: %s", type(exc).__name__)
            except ClearanceError as exc:  # e.g. the audit log refused an erasure's entry
                log.warning("maintenance pass failed: %s", exc.detail)
            else:
                if any(astuple(purged)):
                    log.info("maintenance: %s", purged)  # counts only: nothing personal
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period * _jitter.uniform(0.8, 1.2))


@contextlib.asynccontextmanager
async def running(settings: Settings, engine: Engine, audit: AuditSink) -> AsyncIterator[None]:
    """Run the loop for the body's duration (the gateway's lifespan); the first pass is at once."""
    if settings.portal.maintenance_minutes <= 0:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(Maintenance(settings, engine, audit).run(stop), name=TASK_NAME)
    try:
        yield
    finally:
        stop.set()
        # A pass under way runs in a thread, which cannot be cancelled: wait for it, so nothing
        # touches the engine or the audit log after the lifespan has closed them.
        await task
