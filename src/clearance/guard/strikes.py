"""Account-level enforcement: flags count per verified person, not per key; at `[guard] strikes`
flags within `window_hours` the person's controlled models are held (the `usage-review-pending`
rule) and a case opens in the review queue, until a reviewer clears or confirms it.

The flagged excerpt is sealed in the evidence vault (kept `excerpt_retention_days`); the log and
the database hold a keyed digest, the categories and the score, never the text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.audit.entries import admin_action
from clearance.audit.sink import AuditSink
from clearance.config import GuardSettings
from clearance.errors import AuditUnavailable
from clearance.guard.models import Check
from clearance.guard.tables import guard_cases, guard_flags
from clearance.identity.vault import EvidenceVault
from clearance.principals.service import touch_facts
from clearance.store.tables import users

log = logging.getLogger("clearance.guard")
ACTOR = "guard"  # the audit actor of holds the guard places by itself


@dataclass(frozen=True, slots=True)
class Flagged:
    flag_id: int
    strikes: int  # the person's flags that count now (in the window, not cleared)
    case_id: int | None  # the case a hold opened with this flag, if it did


class Strikes:
    def __init__(
        self,
        engine: Engine,
        audit: AuditSink,
        settings: GuardSettings,
        vault: EvidenceVault | None,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.settings = settings
        self.vault = vault

    def record(
        self, subject_id: str, model_id: str, check: Check, decision_index: int | None
    ) -> Flagged:
        """Store one flag (run in a thread); place the hold when it reaches the threshold."""
        excerpt_id = None
        if check.excerpt and self.vault is not None:
            excerpt_id = self.vault.put(check.excerpt.encode("utf-8", "replace")).id
        now = datetime.now(UTC)
        v = check.verdict
        with self.engine.begin() as conn:
            user_id = conn.execute(
                sa.select(users.c.id).where(users.c.subject_id == subject_id)
            ).scalar_one()
            flag_id = conn.execute(
                sa.insert(guard_flags)
                .values(
                    user_id=user_id,
                    model_id=model_id,
                    stage=check.stage,
                    categories=list(v.categories),
                    score_milli=round(min(max(v.score, 0.0), 1.0) * 1000),
                    decision_index=decision_index,
                    digest=check.digest,
                    excerpt_id=excerpt_id,
                    created_at=now,
                )
                .returning(guard_flags.c.id)
            ).scalar_one()
            since = now - timedelta(hours=self.settings.window_hours)
            counted = conn.execute(
                sa.select(sa.func.count())
                .select_from(guard_flags)
                .where(
                    guard_flags.c.user_id == user_id,
                    guard_flags.c.cleared_at.is_(None),
                    guard_flags.c.created_at > since,
                )
            ).scalar_one()
            case_id = None
            if self.settings.strikes and counted >= self.settings.strikes:
                case_id = _hold(conn, user_id, now)
        if case_id is not None:
            self._append_hold(subject_id, model_id, case_id, counted)
        return Flagged(flag_id, counted, case_id)

    def _append_hold(self, subject_id: str, model_id: str, case_id: int, counted: int) -> None:
        try:
            self.audit.append(
                admin_action(
                    actor=ACTOR,
                    action="usage.hold",
                    target=f"guard_case:{case_id}",
                    details={
                        "flags": counted,
                        "window_hours": self.settings.window_hours,
                        "model": model_id,
                    },
                    subject=subject_id,
                )
            )
        except AuditUnavailable:
            # The hold is in force (the safe side); the case row says when it was placed.
            log.error("audit log unavailable while recording hold guard_case:%d", case_id)


def _hold(conn: sa.Connection, user_id: int, now: datetime) -> int | None:
    """Hold the person's controlled models and open a case, unless a hold is already in place
    (the conditional UPDATE closes the race between two workers placing it at once)."""
    placed = conn.execute(
        sa.update(users)
        .where(users.c.id == user_id, users.c.usage_hold.is_(None))
        .values(usage_hold="pending")
    ).rowcount
    if not placed:
        return None
    case_id: int = conn.execute(
        sa.insert(guard_cases)
        .values(user_id=user_id, status="pending", opened_at=now)
        .returning(guard_cases.c.id)
    ).scalar_one()
    conn.execute(
        sa.update(guard_flags)
        .where(
            guard_flags.c.user_id == user_id,
            guard_flags.c.cleared_at.is_(None),
            guard_flags.c.case_id.is_(None),
        )
        .values(case_id=case_id)
    )
    touch_facts(conn, user_id)  # every worker drops the person's cached facts within a poll
    return case_id
