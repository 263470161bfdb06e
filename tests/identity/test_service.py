"""The verification decision, stored, audited and applied, on real SQLite and PostgreSQL.

Documents are ICAO 9303 MRZ text: the Utopia specimens printed in ../shared/reference (9303-4
Appendix A, 9303-5) verbatim, and the same specimen data re-issued by real states with
`compose` (whose output is first checked against the printed specimen, so the check digits of
every derived document are the standard's). Faces and liveness are given as already measured
distances: the seam `Examination` that the OCR / face edge fills in.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.audit.service import AuditLog
from clearance.audit.tables import audit_entries
from clearance.errors import Conflict, InvalidInput
from clearance.identity import review, service
from clearance.identity.decision import read_mrz_text
from clearance.identity.models import (
    Examination,
    FaceCheck,
    LivenessCheck,
    Outcome,
    VerificationMethod,
)
from clearance.identity.mrz import DocumentData, DocumentFormat, Sex, compose
from clearance.identity.vault import EvidenceVault
from clearance.principals import service as principals
from clearance.principals.models import Method, UsPerson

TODAY = date.today()
FUTURE = date(TODAY.year + 5, 4, 15)
# ICAO 9303-4 Appendix A to Part 4 (TD3) and 9303-5 (TD1): the printed specimens.
SPECIMEN_TD3 = (
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
)
SPECIMEN_TD1 = (
    "I<UTOD231458907<<<<<<<<<<<<<<<",
    "7408122F1204159UTO<<<<<<<<<<<6",
    "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
)
ANNA = DocumentData(
    format=DocumentFormat.TD3,
    document_code="P",
    issuing_state="UTO",
    nationality="UTO",
    primary_identifier="ERIKSSON",
    secondary_identifier="ANNA MARIA",
    document_number="L898902C3",
    birth_date=date(1974, 8, 12),
    sex=Sex.FEMALE,
    expiry_date=date(2012, 4, 15),
    optional_data="ZE184226B",
)
GOOD_FACE = FaceCheck(distance=0.31, match=0.5, review=0.6)


def us_passport(**changes: object) -> tuple[str, ...]:
    data = replace(ANNA, issuing_state="USA", nationality="USA", expiry_date=FUTURE)
    return compose(replace(data, **changes))  # type: ignore[arg-type]


def lpr_card(nationality: str = "MEX", code: str = "C1") -> tuple[str, ...]:
    # Real US permanent resident cards print the document code "C1".
    return compose(
        DocumentData(
            format=DocumentFormat.TD1,
            document_code=code,
            issuing_state="USA",
            nationality=nationality,
            primary_identifier="ERIKSSON",
            secondary_identifier="ANNA MARIA",
            document_number="SRC0012345",
            birth_date=date(1974, 8, 12),
            sex=Sex.FEMALE,
            expiry_date=FUTURE,
        )
    )


def examination(
    lines: tuple[str, ...],
    *,
    face: FaceCheck | None = GOOD_FACE,
    liveness: LivenessCheck | None = None,
    live: bool = True,
    name_confirmed: bool = True,
) -> Examination:
    mrz, problem = read_mrz_text(lines, today=TODAY)
    if liveness is None and live:
        liveness = LivenessCheck(True, (), FaceCheck(0.33, 0.5, 0.6))
    return Examination(
        document_image=b"document-jpeg:" + "".join(lines).encode(),
        selfie_image=b"selfie-jpeg",
        frames=(b"frame-1", b"frame-2") if liveness else (),
        mrz=mrz,
        mrz_problem=problem,
        name_confirmed=name_confirmed,
        face=face,
        face_problem=None if face else "no_face",
        liveness=liveness,
    )


def add_user(engine: Engine, email: str, name: str | None = "Anna Maria Eriksson") -> int:
    with engine.begin() as conn:
        return principals.add_user(conn, email, name=name, birth_date=date(1974, 8, 12)).id


def verify(
    engine: Engine,
    vault: EvidenceVault,
    audit: AuditLog,
    user_id: int,
    exam: Examination,
    method: VerificationMethod = VerificationMethod.REMOTE,
) -> service.Case:
    return service.verify_document(
        engine, vault, audit, user_id, exam, method=method, max_age_days=365, today=TODAY
    )


def audit_entry(engine: Engine, index: int | None) -> dict[str, object]:
    assert index is not None
    with engine.connect() as conn:
        raw = conn.execute(
            sa.select(audit_entries.c.entry).where(audit_entries.c.idx == index)
        ).scalar_one()
    entry: dict[str, object] = json.loads(raw)
    return entry


def test_compose_reproduces_the_printed_specimen() -> None:
    assert compose(ANNA) == SPECIMEN_TD3


def test_us_passport_is_verified_as_citizen_and_reaches_the_policy(
    engine: Engine, vault: EvidenceVault, audit: AuditLog
) -> None:
    user_id = add_user(engine, "anna@example.com")
    with engine.connect() as conn:
        before = principals.get_user_by_id(conn, user_id).facts_version
    case = verify(engine, vault, audit, user_id, examination(us_passport()))
    assert case.status is Outcome.VERIFIED
    assert case.reasons == ()
    assert (case.nationalities, case.us_person) == (("US",), UsPerson.CITIZEN)
    assert case.document is not None and case.document.type == "passport"
    assert (case.document.issuing_state, case.document.expiry) == ("US", FUTURE)
    with engine.connect() as conn:
        user = principals.get_user_by_id(conn, user_id)
    assert user.facts_version > before
    assert user.identity is not None
    assert user.identity.us_person is UsPerson.CITIZEN
    assert (user.identity.method, user.identity.source) == (Method.REMOTE, "verification")
    # Expiry: the document's, capped at the configured maximum age (365 days from today).
    assert user.identity.expires == min(FUTURE, TODAY + timedelta(days=365))
    entry = audit_entry(engine, case.audit_index)
    assert entry["type"] == "identity_decision"
    assert (entry["subject"], entry["outcome"], entry["us_person"]) == (
        user.subject_id,
        "verified",
        "citizen",
    )
    assert "ERIKSSON" not in json.dumps(entry) and "L898902C3" not in json.dumps(entry)
    # The images are in the vault, encrypted, and decrypt to what was given.
    assert [e.kind.value for e in case.evidence] == ["document", "selfie", "frame", "frame"]
    assert vault.get(case.evidence[1].id) == b"selfie-jpeg"
    stored = (vault._dir / case.evidence[1].id[:2] / case.evidence[1].id).read_bytes()
    assert b"selfie-jpeg" not in stored


def test_permanent_resident_card_is_lpr(
    engine: Engine, vault: EvidenceVault, audit: AuditLog
) -> None:
    user_id = add_user(engine, "lpr@example.com")
    case = verify(engine, vault, audit, user_id, examination(lpr_card()))
    assert case.status is Outcome.VERIFIED, case.reasons
    assert case.document is not None and case.document.type == "residence_permit"
    # The nationality is the holder's, not the issuer's: a residence card may differ.
    assert (case.nationalities, case.us_person) == (("MX",), UsPerson.LPR)


def test_foreign_passport_is_not_a_us_person(
    engine: Engine, vault: EvidenceVault, audit: AuditLog
) -> None:
    user_id = add_user(engine, "se@example.com")
    lines = compose(replace(ANNA, issuing_state="SWE", nationality="SWE", expiry_date=FUTURE))
    case = verify(engine, vault, audit, user_id, examination(lines))
    assert (case.status, case.nationalities, case.us_person) == (
        Outcome.VERIFIED,
        ("SE",),
        UsPerson.NONE,
    )


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        (us_passport(expiry_date=TODAY - timedelta(days=1)), "document_expired"),
        (SPECIMEN_TD3, "specimen_document"),
        (SPECIMEN_TD1, "specimen_document"),
        ((us_passport()[0], us_passport()[1][:-1] + "0"), "mrz_check_digit"),
    ],
    ids=["expired", "specimen-td3", "specimen-td1", "check-digit"],
)
def test_unacceptable_documents_are_rejected_without_facts(
    engine: Engine, vault: EvidenceVault, audit: AuditLog, lines: tuple[str, ...], reason: str
) -> None:
    user_id = add_user(engine, "bad@example.com")
    case = verify(engine, vault, audit, user_id, examination(lines))
    assert case.status is Outcome.REJECTED
    assert reason in case.reasons
    with engine.connect() as conn:
        assert principals.get_user_by_id(conn, user_id).identity is None
    assert audit_entry(engine, case.audit_index)["outcome"] == "rejected"


def test_a_document_backs_one_account(
    engine: Engine, vault: EvidenceVault, audit: AuditLog
) -> None:
    first, second = add_user(engine, "first@example.com"), add_user(engine, "second@example.com")
    assert verify(engine, vault, audit, first, examination(us_passport())).status is (
        Outcome.VERIFIED
    )
    reused = verify(engine, vault, audit, second, examination(us_passport()))
    assert (reused.status, reused.reasons) == (Outcome.REJECTED, ("document_reused",))
    # The owner may verify again with it (renewal of an expiring verification).
    again = verify(engine, vault, audit, first, examination(us_passport()))
    assert again.status is Outcome.VERIFIED


@pytest.mark.parametrize(
    ("face", "liveness", "status", "reason"),
    [
        (FaceCheck(0.72, 0.5, 0.6), None, Outcome.REJECTED, "face_mismatch"),
        (FaceCheck(0.55, 0.5, 0.6), None, Outcome.REVIEW, "face_uncertain"),
        (None, None, Outcome.REVIEW, "face_unusable"),
        (
            GOOD_FACE,
            LivenessCheck(False, ("no_blink",), FaceCheck(0.3, 0.5, 0.6)),
            Outcome.REJECTED,
            "liveness_failed",
        ),
        (
            GOOD_FACE,
            LivenessCheck(True, (), FaceCheck(0.8, 0.5, 0.6)),
            Outcome.REJECTED,
            "liveness_other_person",
        ),
    ],
    ids=["mismatch", "grey-band", "no-face", "liveness-failed", "liveness-other-person"],
)
def test_faces_that_do_not_match(
    engine: Engine,
    vault: EvidenceVault,
    audit: AuditLog,
    face: FaceCheck | None,
    liveness: LivenessCheck | None,
    status: Outcome,
    reason: str,
) -> None:
    user_id = add_user(engine, "face@example.com")
    case = verify(
        engine, vault, audit, user_id, examination(us_passport(), face=face, liveness=liveness)
    )
    assert (case.status, case.reasons) == (status, (reason,))
    with engine.connect() as conn:
        assert principals.get_user_by_id(conn, user_id).identity is None


def test_remote_without_liveness_goes_to_review_in_person_does_not(
    engine: Engine, vault: EvidenceVault, audit: AuditLog
) -> None:
    remote = add_user(engine, "remote@example.com")
    case = verify(engine, vault, audit, remote, examination(us_passport(), live=False))
    assert (case.status, case.reasons) == (Outcome.REVIEW, ("liveness_missing",))
    desk = add_user(engine, "desk@example.com")
    lines = us_passport(document_number="X12345678")
    case = verify(
        engine, vault, audit, desk, examination(lines, live=False), VerificationMethod.IN_PERSON
    )
    assert case.status is Outcome.VERIFIED
    with engine.connect() as conn:
        identity = principals.get_user_by_id(conn, desk).identity
    assert identity is not None and identity.method is Method.IN_PERSON


@pytest.mark.parametrize(
    ("declared", "lines", "reason"),
    [
        # DESIGN.md: LINDQVIST read as INDQVIST passes every check digit.
        (
            "Anna Lindqvist",
            us_passport(primary_identifier="INDQVIST", secondary_identifier="ANNA"),
            "name_mismatch",
        ),
        (None, us_passport(), "name_not_declared"),
    ],
    ids=["misread", "undeclared"],
)
def test_names_that_do_not_agree_go_to_review(
    engine: Engine,
    vault: EvidenceVault,
    audit: AuditLog,
    declared: str | None,
    lines: tuple[str, ...],
    reason: str,
) -> None:
    user_id = add_user(engine, "name@example.com", name=declared)
    case = verify(engine, vault, audit, user_id, examination(lines))
    assert (case.status, case.reasons) == (Outcome.REVIEW, (reason,))


def test_declared_name_with_diacritics_agrees_with_its_transliteration(
    engine: Engine, vault: EvidenceVault, audit: AuditLog
) -> None:
    user_id = add_user(engine, "jurgen@example.com", name="Anna Maria Eriksson-Müller")
    lines = us_passport(primary_identifier="ERIKSSON MUELLER")
    assert verify(engine, vault, audit, user_id, examination(lines)).status is Outcome.VERIFIED


def test_nationality_that_differs_from_the_issuer_goes_to_review(
    engine: Engine, vault: EvidenceVault, audit: AuditLog
) -> None:
    user_id = add_user(engine, "gb@example.com")
    stateless = compose(replace(ANNA, issuing_state="D", nationality="XXA", expiry_date=FUTURE))
    case = verify(engine, vault, audit, user_id, examination(stateless))
    assert case.status is Outcome.REVIEW
    assert set(case.reasons) == {"nationality_not_established", "nationality_differs_from_issuer"}
    assert case.nationalities == ()


def test_review_queue_open_is_audited_and_decide_applies_facts(
    engine: Engine, vault: EvidenceVault, audit: AuditLog
) -> None:
    user_id = add_user(engine, "grey@example.com")
    exam = examination(us_passport(), face=FaceCheck(0.55, 0.5, 0.6))
    case = verify(engine, vault, audit, user_id, exam)
    with engine.connect() as conn:
        assert [c.id for c in review.pending(conn)] == [case.id]
    opened = review.open_case(engine, vault, audit, case.id, actor="op:alice")
    assert [data for _, data in opened.images][:2] == [exam.document_image, b"selfie-jpeg"]
    with engine.connect() as conn:
        head = conn.execute(sa.select(sa.func.max(audit_entries.c.idx))).scalar_one()
    viewed = audit_entry(engine, head)
    assert (viewed["action"], viewed["actor"], viewed["subject"]) == (
        "identity.review.view",
        "op:alice",
        case.subject,
    )
    with pytest.raises(InvalidInput):
        review.decide_case(
            engine,
            audit,
            case.id,
            actor="op:alice",
            outcome=Outcome.VERIFIED,
            note=" ",
            max_age_days=365,
        )
    decided = review.decide_case(
        engine,
        audit,
        case.id,
        actor="op:alice",
        outcome=Outcome.VERIFIED,
        note="portrait checked against the selfie by hand",
        max_age_days=365,
    )
    assert decided.status is Outcome.VERIFIED and decided.decided_by == "op:alice"
    entry = audit_entry(engine, decided.audit_index)
    assert (entry["outcome"], entry["reviewer"], entry["method"]) == (
        "verified",
        "op:alice",
        "manual",
    )
    with engine.connect() as conn:
        identity = principals.get_user_by_id(conn, user_id).identity
        assert review.pending(conn) == []
    assert identity is not None and identity.us_person is UsPerson.CITIZEN
    with pytest.raises(Conflict):
        review.decide_case(
            engine,
            audit,
            case.id,
            actor="op:bob",
            outcome=Outcome.REJECTED,
            note="x",
            max_age_days=365,
        )


def test_rejected_review_releases_the_document(
    engine: Engine, vault: EvidenceVault, audit: AuditLog
) -> None:
    first, second = add_user(engine, "a@example.com"), add_user(engine, "b@example.com")
    case = verify(engine, vault, audit, first, examination(us_passport(), live=False))
    assert case.status is Outcome.REVIEW  # the document is held for this case meanwhile
    held = verify(engine, vault, audit, second, examination(us_passport()))
    assert held.reasons == ("document_reused",)
    review.decide_case(
        engine,
        audit,
        case.id,
        actor="op",
        outcome=Outcome.REJECTED,
        note="not the holder",
        max_age_days=365,
    )
    assert verify(engine, vault, audit, second, examination(us_passport())).status is (
        Outcome.VERIFIED
    )


def test_retention_erases_images_and_keeps_the_decision(
    engine: Engine, vault: EvidenceVault, audit: AuditLog
) -> None:
    user_id = add_user(engine, "old@example.com")
    done = verify(engine, vault, audit, user_id, examination(us_passport()))
    pending = verify(engine, vault, audit, user_id, examination(us_passport(), live=False))
    assert service.purge_expired(engine, vault, audit, retention_days=30, actor="op") == 0
    later = datetime.now(UTC) + timedelta(days=31)
    assert (
        service.purge_expired(engine, vault, audit, retention_days=30, actor="op", now=later) == 4
    )
    with engine.connect() as conn:
        kept = service.get_case(conn, done.id)
        waiting = service.get_case(conn, pending.id)
    assert kept.status is Outcome.VERIFIED and all(e.erased for e in kept.evidence)
    assert not any(vault.exists(e.id) for e in kept.evidence)
    assert not any(e.erased for e in waiting.evidence)  # a reviewer still needs these


def test_erasure_on_request_is_audited(
    engine: Engine, vault: EvidenceVault, audit: AuditLog
) -> None:
    user_id = add_user(engine, "gone@example.com")
    case = verify(engine, vault, audit, user_id, examination(us_passport()))
    assert service.erase_evidence(engine, vault, audit, user_id, actor="op:dpo") == 4
    with engine.connect() as conn:
        after = service.get_case(conn, case.id)
        head = conn.execute(sa.select(sa.func.max(audit_entries.c.idx))).scalar_one()
        assert principals.get_user_by_id(conn, user_id).identity is not None  # decision stays
    assert all(e.erased for e in after.evidence)
    opened = review.open_case(engine, vault, audit, case.id, actor="op")
    assert all(data is None for _, data in opened.images)
    assert audit_entry(engine, head)["action"] == "identity.evidence.erase"
