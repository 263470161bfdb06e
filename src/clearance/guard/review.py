"""The misuse guard's review queue: the cases `strikes.Strikes` opens when a person's flags reach
`[guard] strikes`, and what a reviewer does with them.

- `open_case` shows a case with its flags and their excerpts, decrypted from the evidence vault;
  the `usage.review.view` entry is appended before anything is decrypted, so an unaudited look
  is impossible (as for identity cases, identity/review.py).
- `decide` clears a case (the hold is lifted, its flags stop counting as strikes) or confirms it
  (controlled models stay refused), with a required reason; the status UPDATE only matches a
  pending case, so of two reviewers deciding at once the second gets a Conflict.
- `release` lifts a confirmed hold later; `purge_excerpts` erases excerpts past
  `[guard] excerpt_retention_days` (run by the maintenance pass).

Every step is an `admin_action` entry naming the reviewer, the case and the person's pseudonym;
no entry carries excerpt text (the log holds the flags' digests, categories and scores).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from clearance.audit.entries import admin_action
from clearance.audit.holds import Scope as HoldScope
from clearance.audit.sink import AuditSink
from clearance.audit.tables import legal_holds
from clearance.errors import Conflict, InvalidInput, NotFound
from clearance.guard.tables import guard_cases, guard_flags
from clearance.identity.vault import EvidenceVault
from clearance.principals.service import touch_facts
from clearance.store.tables import orgs, users

log = logging.getLogger("clearance.guard")

Status = Literal["pending", "cleared", "confirmed"]
Decision = Literal["cleared", "confirmed"]
STATUSES: tuple[Status, ...] = ("pending", "cleared", "confirmed")
MAX_REASON = 2000
_ERASE_BATCH = 500  # excerpts per transaction: bounds how long SQLite's write lock is held


@dataclass(frozen=True, slots=True)
class Flag:
    id: int
    user_id: int
    created_at: datetime
    model_id: str
    stage: str  # prompt | output
    categories: tuple[str, ...]
    score: float  # 0 to 1
    digest: str
    decision_index: int | None
    excerpt_id: str | None  # None: erased (retention) or never stored (no vault)
    cleared_at: datetime | None
    case_id: int | None


@dataclass(frozen=True, slots=True)
class GuardCase:
    id: int
    user_id: int
    email: str
    subject: str  # the person's pseudonym
    status: Status
    opened_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None
    flags: tuple[Flag, ...]  # oldest first

    @property
    def models(self) -> list[str]:
        return sorted({f.model_id for f in self.flags})

    @property
    def categories(self) -> list[str]:
        return sorted({c for f in self.flags for c in f.categories})

    @property
    def max_score(self) -> float | None:
        return max((f.score for f in self.flags), default=None)


@dataclass(frozen=True, slots=True)
class OpenedCase:
    case: GuardCase
    excerpts: tuple[tuple[Flag, str | None], ...]  # None: erased, or never stored


# -- reading ------------------------------------------------------------------------------------


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite hands back naive UTC
        return value.replace(tzinfo=UTC)
    return value


def _flag(row: Any) -> Flag:
    created = _utc(row.created_at)
    assert created is not None
    return Flag(
        id=row.id,
        user_id=row.user_id,
        created_at=created,
        model_id=row.model_id,
        stage=row.stage,
        categories=tuple(row.categories or ()),
        score=row.score_milli / 1000,
        digest=row.digest,
        decision_index=row.decision_index,
        excerpt_id=row.excerpt_id,
        cleared_at=_utc(row.cleared_at),
        case_id=row.case_id,
    )


def _flags_of_pending(user_id: int, case_id: int) -> Any:
    """A pending case's flags: those linked to it, and the person's uncleared flags recorded
    while the hold was in place (they could not open a case of their own)."""
    return sa.or_(
        guard_flags.c.case_id == case_id,
        sa.and_(
            guard_flags.c.user_id == user_id,
            guard_flags.c.case_id.is_(None),
            guard_flags.c.cleared_at.is_(None),
        ),
    )


def _cases(conn: Connection, where: Any) -> list[GuardCase]:
    rows = conn.execute(
        sa.select(guard_cases, users.c.email, users.c.subject_id)
        .join(users, users.c.id == guard_cases.c.user_id)
        .where(where)
        .order_by(
            sa.case((guard_cases.c.status == "pending", 0), else_=1),
            guard_cases.c.opened_at,
            guard_cases.c.id,
        )
    ).all()
    if not rows:
        return []
    conditions = [
        _flags_of_pending(r.user_id, r.id)
        if r.status == "pending"
        else guard_flags.c.case_id == r.id
        for r in rows
    ]
    flags = [
        _flag(f)
        for f in conn.execute(
            sa.select(guard_flags)
            .where(sa.or_(*conditions))
            .order_by(guard_flags.c.created_at, guard_flags.c.id)
        )
    ]
    found = []
    for r in rows:
        if r.status == "pending":
            own = [
                f
                for f in flags
                if f.case_id == r.id
                or (f.user_id == r.user_id and f.case_id is None and f.cleared_at is None)
            ]
        else:
            own = [f for f in flags if f.case_id == r.id]
        opened = _utc(r.opened_at)
        assert opened is not None
        found.append(
            GuardCase(
                id=r.id,
                user_id=r.user_id,
                email=r.email,
                subject=r.subject_id,
                status=r.status,
                opened_at=opened,
                decided_at=_utc(r.decided_at),
                decided_by=r.decided_by,
                reason=r.decision_reason,
                flags=tuple(own),
            )
        )
    return found


def list_cases(conn: Connection, status: Status | None = None) -> list[GuardCase]:
    """Cases, pending first, then oldest first (all of them, or those with `status`)."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
    where = sa.true() if status is None else guard_cases.c.status == status
    return _cases(conn, where)


def get_case(conn: Connection, case_id: int) -> GuardCase:
    found = _cases(conn, guard_cases.c.id == case_id)
    if not found:
        raise NotFound(f"no guard case {case_id}")
    return found[0]


def flags_for(conn: Connection, user_id: int) -> list[Flag]:
    """A person's flags, newest first."""
    rows = conn.execute(
        sa.select(guard_flags)
        .where(guard_flags.c.user_id == user_id)
        .order_by(guard_flags.c.created_at.desc(), guard_flags.c.id.desc())
    )
    return [_flag(r) for r in rows]


def counts(conn: Connection, *, now: datetime | None = None) -> dict[str, int]:
    """Pending cases and flags recorded in the last 24 hours (`clearance guard status`)."""
    since = (now or datetime.now(UTC)) - timedelta(hours=24)
    pending = conn.execute(
        sa.select(sa.func.count()).select_from(guard_cases).where(guard_cases.c.status == "pending")
    ).scalar_one()
    recent = conn.execute(
        sa.select(sa.func.count()).select_from(guard_flags).where(guard_flags.c.created_at > since)
    ).scalar_one()
    return {"pending_cases": int(pending), "flags_24h": int(recent)}


# -- the reviewer's actions -------------------------------------------------------------------


def open_case(
    engine: Engine, vault: EvidenceVault | None, audit: AuditSink, case_id: int, *, actor: str
) -> OpenedCase:
    """The case with its flags' excerpts; the view is recorded before anything is decrypted."""
    with engine.connect() as conn:
        case = get_case(conn, case_id)
    audit.append(
        admin_action(
            actor=actor,
            action="usage.review.view",
            target=f"guard_case:{case.id}",
            details={
                "flags": len(case.flags),
                "excerpts": sum(f.excerpt_id is not None for f in case.flags),
            },
            subject=case.subject,
        )
    )
    return OpenedCase(case, tuple((f, _excerpt(vault, f)) for f in case.flags))


def _excerpt(vault: EvidenceVault | None, flag: Flag) -> str | None:
    if flag.excerpt_id is None or vault is None:
        return None
    try:
        return vault.get(flag.excerpt_id).decode("utf-8", "replace")
    except NotFound:  # erased meanwhile (retention runs on every worker)
        return None


def _reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise InvalidInput("a review decision needs a reason")
    if len(text) > MAX_REASON:
        raise InvalidInput(f"the reason is at most {MAX_REASON} characters")
    return text


def decide(
    engine: Engine,
    audit: AuditSink,
    case_id: int,
    *,
    actor: str,
    outcome: Decision,
    reason: str,
) -> tuple[GuardCase, int]:
    """Clear or confirm a pending case; returns the decided case and its entry's index.

    cleared: the hold is lifted and the case's flags get `cleared_at` (no longer strikes);
    confirmed: the hold stays, as `confirmed`, until `release`."""
    if outcome not in ("cleared", "confirmed"):
        raise InvalidInput("a guard case is cleared or confirmed")
    note = _reason(reason)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        case = get_case(conn, case_id)
        if case.status != "pending":
            raise Conflict(f"guard case {case_id} is {case.status}, not pending")
        # The status test in the UPDATE closes the race between two reviewers deciding at once:
        # only the first update matches, the second is a Conflict and changes nothing.
        updated = conn.execute(
            sa.update(guard_cases)
            .where(guard_cases.c.id == case_id, guard_cases.c.status == "pending")
            .values(status=outcome, decided_at=now, decided_by=actor, decision_reason=note)
        ).rowcount
        if updated != 1:
            raise Conflict(f"guard case {case_id} was decided by someone else meanwhile")
        # Flags recorded while the hold was in place join the case they were shown with.
        conn.execute(
            sa.update(guard_flags)
            .where(
                guard_flags.c.user_id == case.user_id,
                guard_flags.c.case_id.is_(None),
                guard_flags.c.cleared_at.is_(None),
            )
            .values(case_id=case_id)
        )
        if outcome == "cleared":
            conn.execute(
                sa.update(guard_flags)
                .where(guard_flags.c.case_id == case_id, guard_flags.c.cleared_at.is_(None))
                .values(cleared_at=now)
            )
            hold = None
        else:
            hold = "confirmed"
        conn.execute(sa.update(users).where(users.c.id == case.user_id).values(usage_hold=hold))
        touch_facts(conn, case.user_id)  # every worker re-evaluates the person within a poll
        decided = get_case(conn, case_id)
    index = audit.append(
        admin_action(
            actor=actor,
            action="usage.review.clear" if outcome == "cleared" else "usage.review.confirm",
            target=f"guard_case:{case_id}",
            details={"reason": note, "flags": len(decided.flags)},
            subject=case.subject,
        )
    )
    return decided, index


def release(
    engine: Engine, audit: AuditSink, email: str, *, actor: str, reason: str
) -> tuple[str, int]:
    """Lift a confirmed hold; the person's remaining flags are cleared (a fresh start).
    Returns the person's pseudonym and the entry's index."""
    note = _reason(reason)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(users.c.id, users.c.subject_id, users.c.usage_hold).where(
                users.c.email == email.strip().lower()
            )
        ).first()
        if row is None:
            raise NotFound(f"unknown user {email!r}")
        if row.usage_hold == "pending":
            raise Conflict(f"{email}'s hold is pending review: clear or confirm the case")
        released = conn.execute(
            sa.update(users)
            .where(users.c.id == row.id, users.c.usage_hold == "confirmed")
            .values(usage_hold=None)
        ).rowcount
        if released != 1:
            raise Conflict(f"{email} has no confirmed hold")
        cleared = conn.execute(
            sa.update(guard_flags)
            .where(guard_flags.c.user_id == row.id, guard_flags.c.cleared_at.is_(None))
            .values(cleared_at=now)
        ).rowcount
        touch_facts(conn, row.id)
    index = audit.append(
        admin_action(
            actor=actor,
            action="usage.hold.release",
            target=row.subject_id,
            details={"reason": note, "flags_cleared": cleared},
            subject=row.subject_id,
        )
    )
    return row.subject_id, index


# -- retention ----------------------------------------------------------------------------------


def purge_excerpts(
    engine: Engine,
    vault: EvidenceVault,
    audit: AuditSink,
    *,
    retention_days: int,
    actor: str,
    now: datetime | None = None,
) -> int:
    """Erase excerpts older than `retention_days` (vault file deleted, `excerpt_id` NULL).

    A pending case keeps its excerpts until decided (the reviewer needs them), and a decided
    case's retention runs from the decision; a legal hold on the person (or their org) keeps
    them until released. One `usage.excerpt.purge` entry counts what went. Safe on several
    workers at once: each excerpt is claimed by a conditional UPDATE, so exactly one run
    erases and counts it."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    kept_for_case = (
        sa.select(guard_cases.c.id)
        .where(
            guard_cases.c.id == guard_flags.c.case_id,
            sa.or_(guard_cases.c.status == "pending", guard_cases.c.decided_at > cutoff),
        )
        .exists()
    )
    # An unlinked flag of a held person belongs to the pending case (see `_flags_of_pending`).
    held_person = (
        sa.select(users.c.id)
        .where(users.c.id == guard_flags.c.user_id, users.c.usage_hold == "pending")
        .exists()
    )
    due = sa.and_(
        guard_flags.c.excerpt_id.is_not(None),
        guard_flags.c.created_at < cutoff,
        ~kept_for_case,
        ~sa.and_(guard_flags.c.case_id.is_(None), held_person),
        guard_flags.c.user_id.not_in(_legally_held()),
    )
    erased = 0
    while True:
        with engine.begin() as conn:
            batch = conn.execute(
                sa.select(guard_flags.c.id, guard_flags.c.excerpt_id)
                .where(due)
                .order_by(guard_flags.c.id)
                .limit(_ERASE_BATCH)
            ).all()
            if not batch:
                break
            claimed = _claim(conn, batch)
            for excerpt_id in claimed:  # before the claim commits: a failure rolls it back
                vault.erase(excerpt_id)
        erased += len(claimed)
    if erased:
        audit.append(
            admin_action(
                actor=actor,
                action="usage.excerpt.purge",
                target="guard_flags",
                details={"excerpts": erased, "retention_days": retention_days},
            )
        )
    return erased


def _legally_held() -> Any:
    """The ids of people an active legal hold covers, by their pseudonym or their org's name
    (uncorrelated: a hold's `case` scope names identity cases, never guard cases)."""
    person, member = users.alias("held_person"), users.alias("held_member")

    def scoped(scope: HoldScope) -> Any:
        return sa.select(legal_holds.c.scope_value).where(
            legal_holds.c.released_at.is_(None), legal_holds.c.scope == scope.value
        )

    by_person = sa.select(person.c.id).where(person.c.subject_id.in_(scoped(HoldScope.PERSON)))
    by_org = (
        sa.select(member.c.id)
        .join(orgs, orgs.c.id == member.c.org_id)
        .where(orgs.c.name.in_(scoped(HoldScope.ORG)))
    )
    return sa.union(by_person, by_org)


def _claim(conn: Connection, batch: Sequence[Any]) -> list[str]:
    """The excerpts this run erases: each row's id is claimed only if no other run took it."""
    claimed = []
    for row in batch:
        taken = conn.execute(
            sa.update(guard_flags)
            .where(guard_flags.c.id == row.id, guard_flags.c.excerpt_id == row.excerpt_id)
            .values(excerpt_id=None)
        ).rowcount
        if taken == 1:
            claimed.append(row.excerpt_id)
    return claimed


# -- shapes (the CLI's --json and the operator API) -----------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def flag_json(flag: Flag) -> dict[str, object]:
    return {
        "id": flag.id,
        "created_at": _iso(flag.created_at),
        "model": flag.model_id,
        "stage": flag.stage,
        "categories": list(flag.categories),
        "score": flag.score,
        "digest": flag.digest,
        "decision_index": flag.decision_index,
        "case": flag.case_id,
        "cleared": flag.cleared_at is not None,
        "cleared_at": _iso(flag.cleared_at),
    }


def case_json(case: GuardCase) -> dict[str, object]:
    return {
        "case": case.id,
        "email": case.email,
        "subject": case.subject,
        "status": case.status,
        "opened_at": _iso(case.opened_at),
        "decided_at": _iso(case.decided_at),
        "decided_by": case.decided_by,
        "reason": case.reason,
        "flag_count": len(case.flags),
        "models": case.models,
        "categories": case.categories,
        "max_score": case.max_score,
    }


def opened_json(opened: OpenedCase) -> dict[str, object]:
    return {
        **case_json(opened.case),
        "flags": [
            {**flag_json(f), "excerpt": text, "excerpt_erased": text is None}
            for f, text in opened.excerpts
        ],
    }


def cases_json(cases: Iterable[GuardCase]) -> list[dict[str, object]]:
    return [case_json(c) for c in cases]
