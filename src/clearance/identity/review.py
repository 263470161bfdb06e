"""The review queue: operators list cases awaiting review, open them, and decide them.

Opening a case decrypts its evidence on demand and is itself an audit entry (who looked at whose
evidence, never the evidence); the view is recorded before anything is decrypted, so an
unaudited look is impossible. A decision is an `identity_decision` entry naming the reviewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from clearance.audit.entries import admin_action
from clearance.audit.sink import AuditSink
from clearance.errors import Conflict, InvalidInput
from clearance.identity.models import Case, Evidence, Outcome, Reason
from clearance.identity.service import (
    ensure_reviewable,
    get_case,
    list_cases,
    record_decision,
)
from clearance.identity.tables import identity_cases, identity_documents
from clearance.identity.vault import EvidenceVault
from clearance.principals.models import Method


@dataclass(frozen=True, slots=True)
class OpenedCase:
    case: Case
    images: tuple[tuple[Evidence, bytes | None], ...]  # None: erased (retention or request)


def pending(conn: Connection) -> list[Case]:
    """Cases awaiting review, oldest first."""
    return list_cases(conn, status=Outcome.REVIEW)


def open_case(
    engine: Engine, vault: EvidenceVault, audit: AuditSink, case_id: int, *, actor: str
) -> OpenedCase:
    with engine.connect() as conn:
        case = get_case(conn, case_id)
    audit.append(
        admin_action(
            actor=actor,
            action="identity.review.view",
            target=f"identity_case:{case.id}",
            details={"files": sum(not e.erased for e in case.evidence)},
            subject=case.subject,
        )
    )
    images = tuple((e, None if e.erased else vault.get(e.id)) for e in case.evidence)
    return OpenedCase(case, images)


def decide_case(
    engine: Engine,
    audit: AuditSink,
    case_id: int,
    *,
    actor: str,
    outcome: Outcome,
    note: str,
    max_age_days: int,
) -> Case:
    """Close a review case as verified or rejected, with the reviewer's reason."""
    if outcome is Outcome.REVIEW:
        raise InvalidInput("a review decision is verified or rejected")
    if not note.strip():
        raise InvalidInput("a review decision needs a reason")
    with engine.begin() as conn:
        case = get_case(conn, case_id)
        ensure_reviewable(case)
        if outcome is Outcome.VERIFIED and not case.nationalities:
            raise InvalidInput("no nationality was established: the case cannot be verified")
        # The status test in the UPDATE closes the race between two reviewers deciding at once:
        # only the first update matches, the second is a Conflict and records nothing.
        updated = conn.execute(
            sa.update(identity_cases)
            .where(identity_cases.c.id == case_id, identity_cases.c.status == Outcome.REVIEW.value)
            .values(
                status=outcome.value,
                reasons=[*case.reasons, Reason.REVIEWER_DECISION.value],
                decided_at=datetime.now(UTC),
                decided_by=actor,
                decision_note=note.strip(),
            )
        )
        if updated.rowcount != 1:
            raise Conflict(f"identity case {case_id} was decided by someone else meanwhile")
        if outcome is Outcome.REJECTED:  # the document no longer backs this account
            conn.execute(
                sa.delete(identity_documents).where(identity_documents.c.case_id == case_id)
            )
    facts_method = {
        "remote": Method.REMOTE,
        "in_person": Method.IN_PERSON,
    }.get(case.method, Method.ASSERTION)
    return record_decision(
        engine,
        audit,
        case_id,
        audit_method="manual",
        facts_method=facts_method,
        assurance=case.method,
        max_age_days=max_age_days,
        reviewer=actor,
    )
