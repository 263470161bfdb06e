"""The chip path stored, audited and applied, on real SQLite and PostgreSQL: a CSCA master list
loaded as a version (audited), a chip job run by the worker's handler in-process (Passive
Authentication, the real face match of the selfie against DG2's portrait), the facts carrying
`document_assurance = "chip"`, forged chips rejected with their reason, and the optional policy
rule that requires chip assurance for controlled models."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.audit.service import AuditLog
from clearance.audit.tables import audit_entries
from clearance.config import Settings, settings_from_mapping
from clearance.identity import cip, csca
from clearance.identity.chip import PaPolicy, passive_authentication
from clearance.identity.decision import decide
from clearance.identity.models import (
    Case,
    ChipCheck,
    ChipFiles,
    DocumentAssurance,
    Examination,
    FaceCheck,
    Outcome,
    Reason,
    VerificationMethod,
)
from clearance.identity.vault import generate_master_key
from clearance.jobs import chip as chip_jobs
from clearance.jobs import service as jobs
from clearance.jobs.verification import Verifications
from clearance.policy.engine import DEFAULT_PACK
from clearance.policy.facts import principal_facts
from clearance.policy.models import RequestContext
from clearance.policy.service import PolicyService
from clearance.principals import service as principals
from clearance.principals.models import Method, UsPerson
from tests.factories import add_catalog, make_settings, person
from tests.fixtures.identity import chip

SELFIE = (chip.FACES / "collins.jpg").read_bytes()
NAME, BIRTH = "Willeke Liselotte de Bruijn", date(1965, 3, 10)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    made = make_settings(tmp_path, db_url)
    made.identity.master_key_file.write_text(generate_master_key() + "\n")
    return made


@pytest.fixture
def handler(settings: Settings, engine: Engine, audit: AuditLog) -> Verifications:
    return Verifications(settings, engine, audit)


def _entry(engine: Engine, index: int | None) -> dict[str, object]:
    assert index is not None
    with engine.connect() as conn:
        raw = conn.execute(
            sa.select(audit_entries.c.entry).where(audit_entries.c.idx == index)
        ).scalar_one()
    entry: dict[str, object] = json.loads(raw)
    return entry


def _load_anchors(engine: Engine, audit: AuditLog) -> csca.LoadResult:
    return csca.load(engine, audit, chip.pem([chip.default_csca().cert]), actor="cli:test")


def _run(
    engine: Engine, handler: Verifications, passport: chip.Passport, email: str
) -> tuple[Case | None, int]:
    with engine.begin() as conn:
        user_id = principals.add_user(conn, email, name=NAME, birth_date=BIRTH).id
    uploads = chip_jobs.ChipUploads(ChipFiles(passport.dg1, passport.dg2, passport.sod), SELFIE, ())
    chip_jobs.enqueue(
        engine,
        handler.vault,
        uploads,
        user_id=user_id,
        method=VerificationMethod.IN_PERSON,
        max_attempts=3,
        max_pending=100,
    )
    job = jobs.claim(engine, lease_seconds=60, runner="test")
    assert job is not None and chip_jobs.is_chip(job.payload)
    case = handler.run(job)
    with engine.connect() as conn:
        assert jobs.get(conn, job.id).state.value == "done"
    vault = handler.vault
    assert not any(vault.exists(i) for i in chip_jobs.staged_ids(job.payload))
    return case, user_id


def test_a_master_list_is_loaded_as_an_audited_version(engine: Engine, audit: AuditLog) -> None:
    first = _load_anchors(engine, audit)
    assert first.created and first.version.version == 1 and first.version.certificates == 1
    entry = _entry(engine, first.audit_index)
    assert entry["action"] == "identity.csca.load"
    details = entry["details"]
    assert isinstance(details, dict)
    assert (details["version"], details["digest"]) == (1, first.version.digest)
    again = _load_anchors(engine, audit)
    assert not again.created and again.version.version == 1
    cache = csca.TrustCache(PaPolicy())
    assert cache.get(engine).version == 1
    other = chip.csca(key=chip.ec_key("secp384r1", 2), cn="CSCA Next")
    both = [chip.default_csca().cert, other.cert]
    second = csca.load(engine, audit, chip.pem(both), actor="cli:test")
    assert second.version.version == 2
    anchors = cache.get(engine)
    assert (anchors.version, len(anchors.cscas)) == (2, 2)
    with engine.connect() as conn:
        assert [v.version for v in csca.versions(conn)] == [1, 2]


def test_a_chip_passport_is_verified_with_chip_assurance(
    engine: Engine, audit: AuditLog, handler: Verifications, settings: Settings
) -> None:
    _load_anchors(engine, audit)
    case, user_id = _run(engine, handler, chip.passport(), "willeke@example.nl")
    assert case is not None
    assert case.status is Outcome.VERIFIED, case.reasons
    assert case.source == "chip" and case.assurance == "chip"
    assert case.nationalities == ("NL",)
    assert case.face is not None and case.face.distance < 0.5
    entry = _entry(engine, case.audit_index)
    assert (entry["method"], entry["outcome"]) == ("chip", "verified")
    assert "BRUIJN" not in json.dumps(entry)
    with engine.connect() as conn:
        user = principals.get_user_by_id(conn, user_id)
    assert user.identity is not None and user.identity.source == "chip"
    assert principal_facts(user).document_assurance == "chip"


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        ("dg1", Reason.CHIP_HASH_MISMATCH),
        ("untrusted", Reason.CHIP_UNTRUSTED),
        ("sha1", Reason.CHIP_ALGORITHM),
    ],
)
def test_forged_chips_are_rejected_with_their_reason(
    engine: Engine, audit: AuditLog, handler: Verifications, forge: str, reason: Reason
) -> None:
    _load_anchors(engine, audit)
    passport = chip.passport(opts=chip.SodOptions(digest="sha1") if forge == "sha1" else None)
    if forge == "dg1":
        passport.dg1 = chip.dg1(chip.mrz_lines(given="MALLORY"))
    if forge == "untrusted":
        passport = chip.passport(authority=chip.csca(key=chip.rsa_key(3072, 11), cn="CSCA Rogue"))
    case, user_id = _run(engine, handler, passport, f"{forge}@example.nl")
    assert case is not None
    assert case.status is Outcome.REJECTED
    assert reason.value in case.reasons
    assert case.nationalities == ()
    with engine.connect() as conn:
        assert principals.get_user_by_id(conn, user_id).identity is None


def test_no_master_list_means_no_chip_is_trusted(engine: Engine, handler: Verifications) -> None:
    case, _ = _run(engine, handler, chip.passport(), "early@example.nl")
    assert case is not None and Reason.CHIP_UNTRUSTED.value in case.reasons


def test_the_decision_reads_the_chip_check() -> None:
    evidence = chip.passport()
    passed = passive_authentication(
        evidence.dg1, evidence.dg2, evidence.sod, cscas=evidence.cscas, at=chip.NOW
    )
    exam = Examination(
        document_image=b"",
        selfie_image=b"",
        frames=(),
        mrz=passed.mrz,
        mrz_problem=None,
        name_confirmed=True,
        face=FaceCheck(0.3, 0.5, 0.6),
        face_problem=None,
        liveness=None,
        assurance=DocumentAssurance.CHIP,
        chip=ChipCheck(None, None, 1),
    )
    kwargs = dict(declared_name=NAME, declared_birth=BIRTH, today=chip.TODAY, reused=False)
    verdict = decide(exam, method=VerificationMethod.IN_PERSON, **kwargs)  # type: ignore[arg-type]
    assert (verdict.status, verdict.assurance) == (Outcome.VERIFIED, DocumentAssurance.CHIP)
    refused = ChipCheck("chip_signature", "bad_signature", 1)
    verdict = decide(replace(exam, chip=refused), method=VerificationMethod.IN_PERSON, **kwargs)  # type: ignore[arg-type]
    assert verdict.status is Outcome.REJECTED
    assert verdict.reasons == (Reason.CHIP_SIGNATURE,)
    assert verdict.nationalities == () and verdict.assurance is None


def _with_chip_rule() -> str:
    head, _, rest = DEFAULT_PACK.partition("// BEGIN controlled-requires-chip\n")
    block, _, tail = rest.partition("// END controlled-requires-chip\n")
    assert block, "the pack ships the rule, commented out"
    return head + "".join(line.removeprefix("// ") for line in block.splitlines(True)) + tail


def test_the_policy_can_require_chip_assurance(engine: Engine, tmp_path: Path, db_url: str) -> None:
    with engine.begin() as conn:
        add_catalog(conn)
        person(conn, "visual@example.com", ["US"], UsPerson.CITIZEN)
        chip_user = principals.add_user(conn, "chip@example.com")
        principals.set_identity(
            conn,
            chip_user.id,
            nationalities=["US"],
            us_person=UsPerson.CITIZEN,
            method=Method.IN_PERSON,
            source="chip",
            expires=None,
            max_age_days=365,
        )
    shipped = PolicyService(make_settings(tmp_path, db_url))
    (tmp_path / "policy" / "default.cedar").write_text(_with_chip_rule())
    on = PolicyService(
        settings_from_mapping({"clearance": {"database_url": db_url}}, base=tmp_path)
    )
    with engine.connect() as conn:
        visual = principals.get_user(conn, "visual@example.com")
        by_chip = principals.get_user(conn, "chip@example.com")
        assert principal_facts(visual).document_assurance != "chip"
        assert shipped.decide(
            conn, visual, "mythos-5", RequestContext(), allow_fallback=False
        ).allowed
        refused = on.decide(conn, visual, "mythos-5", RequestContext(), allow_fallback=False)
        assert not refused.allowed
        assert refused.reasons[0].rule == "controlled-requires-chip"
        assert on.decide(conn, by_chip, "mythos-5", RequestContext(), allow_fallback=False).allowed
        assert on.decide(conn, visual, "fable-4", RequestContext(), allow_fallback=False).allowed


def test_a_chip_read_document_goes_to_the_cip_record(
    engine: Engine, audit: AuditLog, tmp_path: Path, db_url: str
) -> None:
    """With [cip] require = ["document"], the chip's document number is kept as a photo's is."""
    made = settings_from_mapping(
        {"clearance": {"database_url": db_url}, "cip": {"require": ["document"]}}, base=tmp_path
    )
    made.identity.master_key_file.write_text(generate_master_key() + "\n")
    _load_anchors(engine, audit)
    case, user_id = _run(engine, Verifications(made, engine, audit), chip.passport(), "cip@ex.nl")
    assert case is not None and case.status is Outcome.VERIFIED
    with engine.connect() as conn:
        assert "document" in cip.present(conn, user_id)
