"""Legal holds (audit/holds.py): placed, listed and released with audit entries; an erasure
request that meets one is refused and recorded, the retention purge keeps what it holds; on
real SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.audit import holds
from clearance.audit.holds import Scope
from clearance.audit.service import AuditLog
from clearance.audit.tables import audit_entries, legal_holds
from clearance.config import Settings
from clearance.errors import Conflict, InvalidInput, NotFound
from clearance.identity import service
from clearance.identity.models import Case
from clearance.identity.vault import EvidenceVault
from clearance.maintenance import purge_once
from clearance.principals import service as principals
from tests.identity.test_service import examination, us_passport, verify

LATER = datetime.now(UTC) + timedelta(days=31)  # past a 30-day evidence retention


def entries(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        raw = conn.execute(sa.select(audit_entries.c.entry).order_by(audit_entries.c.idx))
        return [json.loads(e) for e in raw.scalars()]


def actions(engine: Engine) -> list[object]:
    return [e.get("action") for e in entries(engine) if e["type"] == "admin_action"]


def person(
    engine: Engine, vault: EvidenceVault, audit: AuditLog, email: str, org: str | None = None
) -> tuple[int, str, Case]:
    """A person with one verified case and its four evidence files (document, selfie, frames)."""
    with engine.begin() as conn:
        user = principals.add_user(conn, email, name="Anna Maria Eriksson", org=org)
    case = verify(engine, vault, audit, user.id, examination(us_passport()))
    assert len(case.evidence) == 4 and not any(e.erased for e in case.evidence)
    return user.id, user.subject_id, case


def files_left(engine: Engine, vault: EvidenceVault, case_id: int) -> int:
    with engine.connect() as conn:
        case = service.get_case(conn, case_id)
    left = [e for e in case.evidence if not e.erased]
    assert all(vault.exists(e.id) for e in left)
    assert not any(vault.exists(e.id) for e in case.evidence if e.erased)
    return len(left)


def test_the_migration_creates_the_table_the_metadata_declares(engine: Engine) -> None:
    columns = {c["name"]: c for c in sa.inspect(engine).get_columns("legal_holds")}
    assert set(columns) == {c.name for c in legal_holds.c}
    assert {n for n, c in columns.items() if not c["nullable"]} == {
        c.name for c in legal_holds.c if not c.nullable
    }


def test_add_list_release_round_trip_with_audit_entries(
    engine: Engine, vault: EvidenceVault, audit: AuditLog
) -> None:
    _, subject, _ = person(engine, vault, audit, "anna@example.com")
    hold = holds.add(
        engine,
        audit,
        scope=Scope.PERSON,
        value=subject,
        reason=" grand jury subpoena ",
        reference="GJ-2031-17",
        actor="cli:counsel",
    )
    assert (hold.scope, hold.value, hold.reason, hold.active) == (
        Scope.PERSON,
        subject,
        "grand jury subpoena",
        True,
    )
    with engine.connect() as conn:
        assert holds.list_holds(conn) == [hold]
    released = holds.release(engine, audit, hold.id, reason="subpoena withdrawn", actor="cli:dpo")
    assert not released.active and released.released_by == "cli:dpo"
    with engine.connect() as conn:
        assert holds.list_holds(conn) == []
        assert holds.list_holds(conn, include_released=True) == [released]
        assert holds.get(conn, hold.id).release_reason == "subpoena withdrawn"
    added, ended = [e for e in entries(engine) if str(e.get("action")).startswith("hold.")]
    assert added["action"] == "hold.add" and added["actor"] == "cli:counsel"
    assert added["target"] == f"hold:{hold.id}" and added["subject"] == subject
    assert added["details"] == {
        "scope": "person",
        "value": subject,
        "reason": "grand jury subpoena",
        "reference": "GJ-2031-17",
    }
    assert ended["action"] == "hold.release" and ended["actor"] == "cli:dpo"
    assert ended["details"] == {"scope": "person", "value": subject, "reason": "subpoena withdrawn"}
    assert "anna@example.com" not in json.dumps([added, ended])


@pytest.mark.parametrize("scope", [Scope.PERSON, Scope.ORG, Scope.CASE])
def test_erasure_that_meets_a_hold_is_refused_recorded_and_proceeds_after_release(
    engine: Engine, vault: EvidenceVault, audit: AuditLog, scope: Scope
) -> None:
    with engine.begin() as conn:
        principals.add_org(conn, "Acme Research", "US")
    user_id, subject, case = person(engine, vault, audit, "anna@example.com", org="Acme Research")
    _, _, other = person(engine, vault, audit, "bo@example.com")
    value = {Scope.PERSON: subject, Scope.ORG: "Acme Research", Scope.CASE: str(case.id)}[scope]
    hold = holds.add(
        engine,
        audit,
        scope=scope,
        value=value,
        reason="export investigation",
        reference="OEE-42",
        actor="cli:counsel",
    )
    with pytest.raises(Conflict) as refused:
        service.erase_evidence(engine, vault, audit, user_id, actor="cli:dpo")
    assert refused.value.reason == "legal_hold"
    assert f"legal hold {hold.id}" in refused.value.detail
    assert "export investigation" in refused.value.detail and "OEE-42" in refused.value.detail
    assert files_left(engine, vault, case.id) == 4
    last = entries(engine)[-1]
    assert last["action"] == "identity.evidence.erase_refused"
    assert last["subject"] == subject and last["details"] == {"holds": [hold.id]}
    assert "identity.evidence.erase" not in actions(engine)  # what bundles read as an erasure

    holds.release(engine, audit, hold.id, reason="closed", actor="cli:counsel")
    assert service.erase_evidence(engine, vault, audit, user_id, actor="cli:dpo") == 4
    assert files_left(engine, vault, case.id) == 0
    assert files_left(engine, vault, other.id) == 4  # nobody else's evidence went
    assert actions(engine)[-2:] == ["hold.release", "identity.evidence.erase"]


def test_purge_keeps_held_evidence_and_erases_the_rest(
    engine: Engine,
    vault: EvidenceVault,
    audit: AuditLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, kept_subject, kept = person(engine, vault, audit, "kept@example.com")
    _, gone_subject, gone = person(engine, vault, audit, "gone@example.com")
    second = verify(engine, vault, audit, kept.user_id, examination(us_passport()))
    hold = holds.add(
        engine,
        audit,
        scope=Scope.CASE,
        value=str(kept.id),
        reason="dispute over this verification",
        reference=None,
        actor="cli:counsel",
    )
    with caplog.at_level(logging.INFO, logger="clearance.identity"):
        purged = service.purge_expired(
            engine, vault, audit, retention_days=30, actor="gateway:retention", now=LATER
        )
    assert purged == 8  # gone's case and kept's second case; not the held one
    assert files_left(engine, vault, kept.id) == 4
    assert files_left(engine, vault, gone.id) == files_left(engine, vault, second.id) == 0
    assert service.held_past_retention(engine, retention_days=30, now=LATER) == 4
    # A count only: no subject, case or hold in the log.
    assert [r.getMessage() for r in caplog.records if r.name == "clearance.identity"] == [
        "evidence retention: 4 files past retention kept under legal hold"
    ]
    purges = [e for e in entries(engine) if e.get("action") == "identity.evidence.purge"]
    assert {(e["subject"], e["details"]["files"]) for e in purges} == {  # type: ignore[index]
        (gone_subject, 4),
        (kept_subject, 4),
    }

    holds.release(engine, audit, hold.id, reason="dispute settled", actor="cli:counsel")
    again = service.purge_expired(
        engine, vault, audit, retention_days=30, actor="gateway:retention", now=LATER
    )
    assert again == 4 and files_left(engine, vault, kept.id) == 0
    assert service.held_past_retention(engine, retention_days=30, now=LATER) == 0


@pytest.mark.parametrize("scope", [Scope.PERSON, Scope.ORG])
def test_a_person_or_org_hold_keeps_only_their_own_evidence(
    engine: Engine, vault: EvidenceVault, audit: AuditLog, scope: Scope
) -> None:
    """The hold's subquery is tied to the case being purged, not to any case: a hold on one
    person (or organisation) never keeps everyone else's evidence past retention."""
    with engine.begin() as conn:
        principals.add_org(conn, "Acme Research", "US")
        principals.add_org(conn, "Other Labs", "US")
    _, held_subject, kept = person(engine, vault, audit, "held@example.com", org="Acme Research")
    _, _, other = person(engine, vault, audit, "other@example.com", org="Other Labs")
    _, _, alone = person(engine, vault, audit, "alone@example.com")
    value = held_subject if scope is Scope.PERSON else "Acme Research"
    holds.add(
        engine, audit, scope=scope, value=value, reason="litigation", reference=None, actor="c"
    )
    purged = service.purge_expired(
        engine, vault, audit, retention_days=30, actor="gateway:retention", now=LATER
    )
    assert purged == 8
    assert files_left(engine, vault, kept.id) == 4
    assert files_left(engine, vault, other.id) == files_left(engine, vault, alone.id) == 0


def test_a_hold_before_any_case_covers_the_cases_that_follow(
    engine: Engine, vault: EvidenceVault, audit: AuditLog
) -> None:
    with engine.begin() as conn:
        principals.add_org(conn, "Acme Research", "US")
        user = principals.add_user(conn, "new@example.com", org="Acme Research")
    holds.add(
        engine,
        audit,
        scope=Scope.ORG,
        value="Acme Research",
        reason="litigation hold",
        reference="21-cv-0042",
        actor="cli:counsel",
    )
    case = verify(engine, vault, audit, user.id, examination(us_passport()))
    with engine.connect() as conn:
        assert [h.value for h in holds.active_for_case(conn, case.id)] == ["Acme Research"]
    assert service.purge_expired(engine, vault, audit, retention_days=30, actor="r", now=LATER) == 0
    with pytest.raises(Conflict):
        service.erase_evidence(engine, vault, audit, user.id, actor="cli:dpo")
    assert files_left(engine, vault, case.id) == 4


def test_bad_holds_are_refused_by_name(
    engine: Engine, vault: EvidenceVault, audit: AuditLog
) -> None:
    _, subject, case = person(engine, vault, audit, "anna@example.com")
    bad = [
        (Scope.PERSON, "no-such-subject", "no user with subject 'no-such-subject'"),
        (Scope.ORG, "Nobody Inc", "unknown organisation 'Nobody Inc'"),
        (Scope.CASE, str(case.id + 1), f"no identity case {case.id + 1}"),
        (Scope.CASE, "99999999999", "no identity case 99999999999"),
        (Scope.CASE, "x", "no identity case x"),
    ]
    for scope, value, detail in bad:
        with pytest.raises(NotFound) as caught:
            holds.add(
                engine, audit, scope=scope, value=value, reason="r", reference=None, actor="a"
            )
        assert caught.value.detail == detail
    with pytest.raises(InvalidInput, match="needs a reason"):
        holds.add(
            engine, audit, scope=Scope.PERSON, value=subject, reason=" ", reference=None, actor="a"
        )
    with pytest.raises(InvalidInput, match="reference is longer than 200"):
        holds.add(
            engine,
            audit,
            scope=Scope.PERSON,
            value=subject,
            reason="r",
            reference="x" * 201,
            actor="a",
        )
    with pytest.raises(NotFound, match="no legal hold 7"):
        holds.release(engine, audit, 7, reason="r", actor="a")
    hold = holds.add(
        engine, audit, scope=Scope.PERSON, value=subject, reason="r", reference=None, actor="a"
    )
    holds.release(engine, audit, hold.id, reason="done", actor="a")
    with pytest.raises(Conflict, match=f"legal hold {hold.id} was already released"):
        holds.release(engine, audit, hold.id, reason="again", actor="a")
    with engine.connect() as conn:
        assert holds.get(conn, hold.id).release_reason == "done"  # the first release stands
        assert conn.execute(sa.select(sa.func.count()).select_from(legal_holds)).scalar() == 1
    assert actions(engine).count("hold.add") == 1 and actions(engine).count("hold.release") == 1


def test_the_maintenance_pass_keeps_held_evidence(
    engine: Engine, vault: EvidenceVault, audit: AuditLog
) -> None:
    _, _, kept = person(engine, vault, audit, "kept@example.com")
    _, _, gone = person(engine, vault, audit, "gone@example.com")
    holds.add(
        engine,
        audit,
        scope=Scope.CASE,
        value=str(kept.id),
        reason="litigation hold",
        reference="21-cv-0042",
        actor="cli:counsel",
    )
    purged = purge_once(Settings(), engine, vault, audit, now=LATER)
    assert purged.evidence == 4
    assert files_left(engine, vault, kept.id) == 4 and files_left(engine, vault, gone.id) == 0
