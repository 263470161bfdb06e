"""Identity verification behaviour: decide, store the case and its evidence, audit, apply facts.

Order of work, so that nothing reaches the policy unaudited (DESIGN.md "fail closed"):
1. one transaction stores the case, its vault references and the document binding;
2. the decision is appended to the audit log (its own transaction: SQLite allows one writer);
3. a second transaction records the audit index and, when verified, writes the identity facts
   (`principals.service.set_identity`, which bumps the person's facts version).
If the audit append fails, the case stays without an audit index and no facts are applied.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from clearance.audit import holds
from clearance.audit.entries import admin_action, identity_decision
from clearance.audit.sink import AuditSink
from clearance.config import CipSettings
from clearance.errors import Conflict, NotFound
from clearance.identity import cip
from clearance.identity.decision import decide
from clearance.identity.models import (
    Case,
    ChipCheck,
    DocumentAssurance,
    DocumentSummary,
    Evidence,
    EvidenceKind,
    Examination,
    FaceCheck,
    Outcome,
    Verdict,
    VerificationMethod,
)
from clearance.identity.mrz import MrzResult
from clearance.identity.tables import identity_cases, identity_documents, identity_evidence
from clearance.identity.vault import EvidenceVault, StoredEvidence
from clearance.principals import service as principals
from clearance.principals.models import Method, UsPerson
from clearance.screening.service import screen_user
from clearance.store import reading
from clearance.store.tables import users

log = logging.getLogger("clearance.identity")
CHIP_SOURCE = "chip"  # identity_cases.source and identity_facts.source of a chip verification


def _now() -> datetime:
    return datetime.now(UTC)


def document_digest(vault: EvidenceVault, issuing_state: str, number: str) -> str:
    """Keyed digest of (issuing state, document number): all that is kept of the document's
    identity, enough to refuse its reuse by another account and useless without the key."""
    key = vault.derive_key("document-digest")
    return hmac.new(key, f"{issuing_state}\x00{number}".encode(), hashlib.sha256).hexdigest()


def mrz_digest(vault: EvidenceVault, mrz: MrzResult) -> str:
    state = mrz.issuing_state
    return document_digest(vault, state.alpha2 or state.icao, mrz.document_number)


def evidence_digest(stored: Sequence[tuple[EvidenceKind, StoredEvidence]]) -> str:
    """Digest of the sealed files (not the images): what the audit entry names."""
    text = "\n".join(f"{kind.value}:{item.digest}" for kind, item in stored)
    return hashlib.sha256(text.encode()).hexdigest()


def bound_elsewhere(conn: Connection, digest: str, user_id: int) -> bool:
    row = conn.execute(
        sa.select(identity_documents.c.user_id).where(identity_documents.c.digest == digest)
    ).first()
    return row is not None and row.user_id != user_id


def facts_json(verdict: Verdict, chip: ChipCheck | None = None) -> dict[str, Any]:
    doc, face = verdict.document, verdict.face
    return {
        "document_assurance": verdict.assurance.value if verdict.assurance else None,
        # Certificate names and algorithms of a chip verification, never personal data.
        "chip": None if chip is None else dataclasses.asdict(chip),
        "nationalities": list(verdict.nationalities),
        "us_person": verdict.us_person.value,
        "expires": verdict.expires.isoformat() if verdict.expires else None,
        "document": None
        if doc is None
        else {
            "type": doc.type,
            "issuing_state": doc.issuing_state,
            "expiry": doc.expiry.isoformat(),
        },
        "face": None
        if face is None
        else {"distance": face.distance, "match": face.match, "review": face.review},
        # OCR repairs of unchecked fields a second reading confirmed: positions, never letters.
        "ocr_repairs_confirmed": list(verdict.confirmed_repairs),
        # Share of the page's tiles with a display's rainbow moire (document/replay.py).
        "screen_replay_share": verdict.screen_replay_share,
    }


@contextmanager
def _sealed(vault: EvidenceVault, exam: Examination) -> Iterator[list[tuple[EvidenceKind, Any]]]:
    """Seal the images; erase them again if the case is not stored."""
    items = [(EvidenceKind.DOCUMENT, exam.document_image), (EvidenceKind.SELFIE, exam.selfie_image)]
    items += [(EvidenceKind.FRAME, frame) for frame in exam.frames]
    stored = [(kind, vault.put(data)) for kind, data in items]
    done = False
    try:
        yield stored
        done = True
    finally:
        if not done:
            for _, item in stored:
                vault.erase(item.id)


def insert_case(
    conn: Connection,
    *,
    user_id: int,
    verdict: Verdict,
    method: str,
    source: str,
    digest: str | None,
    evidence: str,
    chip: ChipCheck | None = None,
) -> int:
    return int(
        conn.execute(
            sa.insert(identity_cases)
            .values(
                user_id=user_id,
                status=verdict.status.value,
                method=method,
                source=source,
                reasons=[r.value for r in verdict.reasons],
                facts=facts_json(verdict, chip),
                document_digest=digest,
                evidence_digest=evidence,
                created_at=_now(),
            )
            .returning(identity_cases.c.id)
        ).scalar_one()
    )


def bind_document(conn: Connection, digest: str, user_id: int, case_id: int) -> None:
    if conn.execute(
        sa.select(identity_documents.c.digest).where(identity_documents.c.digest == digest)
    ).first():
        return  # already this user's (a re-verification); another user's was refused above
    conn.execute(
        sa.insert(identity_documents).values(
            digest=digest, user_id=user_id, case_id=case_id, bound_at=_now()
        )
    )


def verify_document(
    engine: Engine,
    vault: EvidenceVault,
    audit: AuditSink,
    user_id: int,
    exam: Examination,
    *,
    method: VerificationMethod,
    max_age_days: int,
    today: date | None = None,
    within: Callable[[Connection, int], None] | None = None,
    cip_settings: CipSettings | None = None,
) -> Case:
    """Decide on one document verification, store it, audit it and apply the facts.

    `within(conn, case_id)` runs in the transaction that stores the case (a queued job binds
    the case to itself there, or rolls the case back if it no longer holds the job). With
    `cip_settings` requiring the document, its type and number go to the person's sealed CIP
    record (identity/cip.py) in the same transaction; the case itself never holds the number."""
    today = today or _now().date()
    with _sealed(vault, exam) as stored, engine.begin() as conn:
        user = principals.get_user_by_id(conn, user_id)
        digest = mrz_digest(vault, exam.mrz) if exam.mrz is not None else None
        reused = digest is not None and bound_elsewhere(conn, digest, user_id)
        verdict = decide(
            exam,
            method=method,
            declared_name=user.name,
            declared_birth=user.birth_date,
            today=today,
            reused=reused,
        )
        case_id = insert_case(
            conn,
            user_id=user_id,
            verdict=verdict,
            method=method.value,
            # "chip": the document's data was verified by Passive Authentication; the facts
            # carry the source, and the policy sees it as `document_assurance`.
            source=CHIP_SOURCE if exam.assurance is DocumentAssurance.CHIP else "verification",
            digest=digest,
            evidence=evidence_digest(stored),
            chip=exam.chip,
        )
        for position, (kind, item) in enumerate(stored):
            conn.execute(
                sa.insert(identity_evidence).values(
                    id=item.id,
                    case_id=case_id,
                    kind=kind.value,
                    position=position,
                    digest=item.digest,
                    created_at=_now(),
                )
            )
        if digest is not None and not reused and verdict.status is not Outcome.REJECTED:
            bind_document(conn, digest, user_id, case_id)
            if cip_settings is not None and exam.mrz is not None:
                state = exam.mrz.issuing_state
                cip.record_document(
                    conn,
                    cip.CipKeys.of(vault),
                    cip_settings,
                    user_id,
                    document_type=exam.mrz.document_code,
                    issuing_state=state.icao,
                    number=exam.mrz.document_number,
                    case_id=case_id,
                )
        if within is not None:
            within(conn, case_id)
    return finish_document(engine, audit, case_id, method=method, max_age_days=max_age_days)


def finish_document(
    engine: Engine,
    audit: AuditSink,
    case_id: int,
    *,
    method: VerificationMethod,
    max_age_days: int,
) -> Case:
    """Steps 2 and 3 for a stored document case; a case already audited is returned as it is
    (a queued job whose runner died after storing its case resumes here)."""
    with reading(engine) as conn:
        case = get_case(conn, case_id)
    if case.audit_index is not None:
        return case
    facts_method = Method.REMOTE if method is VerificationMethod.REMOTE else Method.IN_PERSON
    return record_decision(
        engine,
        audit,
        case_id,
        audit_method="chip" if case.source == CHIP_SOURCE else "document",
        facts_method=facts_method,
        assurance=method.value,
        max_age_days=max_age_days,
    )


def record_decision(
    engine: Engine,
    audit: AuditSink,
    case_id: int,
    *,
    audit_method: str,
    facts_method: Method,
    assurance: str | None,
    max_age_days: int,
    reviewer: str | None = None,
) -> Case:
    """Steps 2 and 3: audit the stored decision, then apply the facts if it is `verified`."""
    with engine.connect() as conn:
        case = get_case(conn, case_id)
    cap = _now().date() + timedelta(days=max_age_days)
    expires = min(case.expires, cap) if case.expires else cap
    index = audit.append(
        identity_decision(
            subject=case.subject,
            outcome=case.status.value,
            method=audit_method,
            evidence_digest=_stored_evidence_digest(engine, case_id),
            us_person=case.us_person.value if case.status is Outcome.VERIFIED else None,
            assurance=assurance,
            reasons=case.reasons,
            reviewer=reviewer,
            expires=expires.isoformat() if case.status is Outcome.VERIFIED else None,
        )
    )
    screened: list[bytes] = []
    with engine.begin() as conn:
        conn.execute(
            sa.update(identity_cases)
            .where(identity_cases.c.id == case_id)
            .values(audit_index=index)
        )
        if case.status is Outcome.VERIFIED:
            principals.set_identity(
                conn,
                case.user_id,
                nationalities=case.nationalities,
                us_person=case.us_person,
                method=facts_method,
                source=case.source,
                expires=case.expires,
                max_age_days=max_age_days,
            )
            # Re-screen with the verified nationalities, in the same transaction.
            screen_user(conn, case.user_id, outbox=screened)
        result = get_case(conn, case_id)
    for entry in screened:
        audit.append(entry)
    return result


def _stored_evidence_digest(engine: Engine, case_id: int) -> str:
    with engine.connect() as conn:
        value = conn.execute(
            sa.select(identity_cases.c.evidence_digest).where(identity_cases.c.id == case_id)
        ).scalar_one()
    return str(value)


def get_case(conn: Connection, case_id: int) -> Case:
    if not 0 < case_id < 2**31:  # ids are 32-bit: PostgreSQL would refuse the query itself
        raise NotFound(f"no identity case {case_id}")
    row = conn.execute(
        sa.select(identity_cases, users.c.subject_id)
        .join(users, users.c.id == identity_cases.c.user_id)
        .where(identity_cases.c.id == case_id)
    ).first()
    if row is None:
        raise NotFound(f"no identity case {case_id}")
    return _case(conn, row)


def list_cases(
    conn: Connection, *, status: Outcome | None = None, user_id: int | None = None
) -> list[Case]:
    query = sa.select(identity_cases, users.c.subject_id).join(
        users, users.c.id == identity_cases.c.user_id
    )
    if status is not None:
        query = query.where(identity_cases.c.status == status.value)
    if user_id is not None:
        query = query.where(identity_cases.c.user_id == user_id)
    return [_case(conn, row) for row in conn.execute(query.order_by(identity_cases.c.id))]


def _case(conn: Connection, row: Row[Any]) -> Case:
    facts = row.facts
    doc, face = facts.get("document"), facts.get("face")
    evidence = conn.execute(
        sa.select(identity_evidence)
        .where(identity_evidence.c.case_id == row.id)
        .order_by(identity_evidence.c.position)
    )
    return Case(
        id=row.id,
        user_id=row.user_id,
        subject=row.subject_id,
        status=Outcome(row.status),
        method=row.method,
        source=row.source,
        reasons=tuple(row.reasons),
        nationalities=tuple(facts.get("nationalities", ())),
        us_person=UsPerson(facts.get("us_person", "none")),
        expires=date.fromisoformat(facts["expires"]) if facts.get("expires") else None,
        document=None
        if doc is None
        else DocumentSummary(doc["type"], doc["issuing_state"], date.fromisoformat(doc["expiry"])),
        face=None if face is None else FaceCheck(face["distance"], face["match"], face["review"]),
        created_at=row.created_at,
        decided_by=row.decided_by,
        decision_note=row.decision_note,
        audit_index=row.audit_index,
        evidence=tuple(
            Evidence(e.id, EvidenceKind(e.kind), e.erased_at is not None) for e in evidence
        ),
        assurance=facts.get("document_assurance"),
    )


def erase_evidence(
    engine: Engine, vault: EvidenceVault, audit: AuditSink, user_id: int, *, actor: str
) -> int:
    """Erasure on request: every image of the person goes; the decisions and facts stay (they
    are export records, 15 CFR 762.6). A request that meets a legal hold on the person, their
    org or one of their cases is refused whole, naming the hold, and the refusal is recorded
    (`identity.evidence.erase_refused`): the evidence is what the hold preserves."""
    with reading(engine) as conn:
        subject = principals.get_user_by_id(conn, user_id).subject_id
        binding = holds.active_for_user(conn, user_id)
    if binding:
        audit.append(
            admin_action(
                actor=actor,
                action="identity.evidence.erase_refused",
                target=subject,
                details={"holds": [h.id for h in binding]},
                subject=subject,
            )
        )
        raise Conflict(holds.refusal(binding), reason="legal_hold")
    # `~held()` again in the claim itself: a hold placed since the check above still binds.
    erased = _erase_where(engine, vault, (identity_cases.c.user_id == user_id) & ~holds.held())
    audit.append(
        admin_action(
            actor=actor,
            action="identity.evidence.erase",
            target=subject,
            details={"files": len(erased)},
            subject=subject,
        )
    )
    return len(erased)


def _past_retention(retention_days: int, now: datetime | None) -> sa.ColumnElement[bool]:
    cutoff = (now or _now()) - timedelta(days=retention_days)
    decided_at = sa.func.coalesce(identity_cases.c.decided_at, identity_cases.c.created_at)
    return sa.and_(identity_cases.c.status != Outcome.REVIEW.value, decided_at < cutoff)


def purge_expired(
    engine: Engine,
    vault: EvidenceVault,
    audit: AuditSink,
    *,
    retention_days: int,
    actor: str,
    now: datetime | None = None,
) -> int:
    """Retention: erase images of decided cases older than `retention_days`. Open review cases
    keep theirs until decided (a reviewer needs them); their retention then runs from the
    decision. Cases under a legal hold keep theirs until it is released (counted in the log,
    by number only). Each person whose images went gets an `identity.evidence.purge` entry.

    Safe to run from several workers or hosts at once: each file is claimed by exactly one run
    (see `_erase_where`), which alone erases and audits it; a second run finds nothing to do."""
    due = _past_retention(retention_days, now)
    erased = _erase_where(engine, vault, due & ~holds.held())
    files: dict[str, int] = {}
    for _, subject in erased:
        files[subject] = files.get(subject, 0) + 1
    for subject, count in files.items():
        audit.append(
            admin_action(
                actor=actor,
                action="identity.evidence.purge",
                target=subject,
                details={"files": count, "retention_days": retention_days},
                subject=subject,
            )
        )
    kept = held_past_retention(engine, retention_days=retention_days, now=now)
    if kept:
        log.info("evidence retention: %d files past retention kept under legal hold", kept)
    return len(erased)


def held_past_retention(engine: Engine, *, retention_days: int, now: datetime | None = None) -> int:
    """Files that retention would erase but a legal hold keeps."""
    query = (
        sa.select(sa.func.count())
        .select_from(identity_evidence)
        .join(identity_cases, identity_cases.c.id == identity_evidence.c.case_id)
        .where(
            identity_evidence.c.erased_at.is_(None),
            _past_retention(retention_days, now),
            holds.held(),
        )
    )
    with reading(engine) as conn:
        return int(conn.execute(query).scalar_one())


_ERASE_BATCH = 500  # files per transaction: bounds how long SQLite's write lock is held


def _erase_where(engine: Engine, vault: EvidenceVault, where: Any) -> list[tuple[str, str]]:
    """Erase the files of matching cases not erased yet; (evidence id, subject) of each.

    Each batch is claimed with one conditional `UPDATE .. WHERE erased_at IS NULL RETURNING`, so
    concurrent runs never erase or count the same file twice: on PostgreSQL the second waits on
    the row locks and then finds the rows erased; on SQLite writers queue (BEGIN IMMEDIATE).
    The files are deleted before the claim commits: a failed delete rolls the claim back, and a
    crash after the deletes leaves rows whose files are already gone (`vault.erase` tolerates
    that) for the next run to mark.
    """
    erased: list[tuple[str, str]] = []
    due = identity_evidence.alias("due")  # not correlated with the UPDATE's own table
    batch = (
        sa.select(due.c.id)
        .join(identity_cases, identity_cases.c.id == due.c.case_id)
        .where(where, due.c.erased_at.is_(None))
        .limit(_ERASE_BATCH)
    )
    while True:
        with engine.begin() as conn:
            claimed = conn.execute(
                sa.update(identity_evidence)
                .where(
                    identity_evidence.c.id.in_(batch.scalar_subquery()),
                    identity_evidence.c.erased_at.is_(None),
                )
                .values(erased_at=_now())
                .returning(identity_evidence.c.id, identity_evidence.c.case_id)
            ).all()
            if not claimed:
                return erased
            cases = {row.case_id for row in claimed}
            subjects: dict[int, str] = {
                case.id: case.subject_id
                for case in conn.execute(
                    sa.select(identity_cases.c.id, users.c.subject_id)
                    .join(users, users.c.id == identity_cases.c.user_id)
                    .where(identity_cases.c.id.in_(cases))
                )
            }
            for row in claimed:
                vault.erase(row.id)
        erased.extend((row.id, subjects[row.case_id]) for row in claimed)


def ensure_reviewable(case: Case) -> None:
    if case.status is not Outcome.REVIEW:
        raise Conflict(f"identity case {case.id} is {case.status.value}, not awaiting review")
