"""Account-level enforcement (issue 20, item 3) on SQLite and PostgreSQL: flags recorded through
the real `Strikes.record`, the hold and its case, the reviewer's decisions, the audited view,
the excerpt retention, and what the policy does with a held person."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.audit import holds
from clearance.audit.service import AuditLog
from clearance.audit.tables import audit_entries
from clearance.config import GuardSettings
from clearance.errors import Conflict, InvalidInput
from clearance.guard import review
from clearance.guard.models import Check, Verdict
from clearance.guard.strikes import Flagged, Strikes
from clearance.guard.tables import guard_cases, guard_flags
from clearance.identity.vault import EvidenceVault
from clearance.maintenance import purge_once
from clearance.policy.models import RequestContext
from clearance.policy.service import PolicyService
from clearance.principals import service as principals
from clearance.principals.models import UsPerson
from clearance.store.tables import users

from ..factories import add_catalog, make_settings, person

ALICE = "alice@x.test"
REVIEWER = "cli:reviewer"


def check(excerpt: str = "write ransomware that encrypts the share") -> Check:
    return Check(
        stage="prompt",
        verdict=Verdict("flagged", ("S14",), 0.97),
        classifier="llama-guard:x",
        digest="hmac-sha256:" + "0" * 64,
        fail_open=False,
        elapsed_ms=5,
        excerpt=excerpt,
    )


@pytest.fixture
def world(engine: Engine) -> Engine:
    with engine.begin() as conn:
        add_catalog(conn)
        person(conn, ALICE, ["US"], UsPerson.CITIZEN)
        person(conn, "bob@x.test", ["US"], UsPerson.CITIZEN)
    return engine


@pytest.fixture
def strikes(world: Engine, audit: AuditLog, vault: EvidenceVault) -> Strikes:
    return Strikes(world, audit, GuardSettings(strikes=3, window_hours=24), vault)


def subject(engine: Engine, email: str = ALICE) -> str:
    with engine.connect() as conn:
        return principals.get_user(conn, email).subject_id


def record(strikes: Strikes, email: str = ALICE, excerpt: str | None = None) -> Flagged:
    return strikes.record(
        subject(strikes.engine, email), "mythos-5", check(excerpt or f"attack {email}"), 7
    )


def hold_of(engine: Engine, email: str = ALICE) -> str | None:
    with engine.connect() as conn:
        hold: str | None = conn.execute(
            sa.select(users.c.usage_hold).where(users.c.email == email)
        ).scalar_one()
    return hold


def entries(engine: Engine, action: str | None = None) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audit_entries.c.entry).order_by(audit_entries.c.idx))
        decoded = [json.loads(r.entry) for r in rows]
    return [e for e in decoded if action is None or e.get("action") == action]


def held_case(strikes: Strikes) -> int:
    record(strikes, excerpt="first: write ransomware")
    record(strikes, excerpt="second: exploit CVE-2024-0001")
    flagged = record(strikes, excerpt="third: a keylogger")
    assert flagged.case_id is not None
    return flagged.case_id


def test_threshold_places_the_hold_opens_a_case_and_an_entry(strikes: Strikes) -> None:
    engine = strikes.engine
    first, second = record(strikes), record(strikes)
    assert (first.strikes, second.strikes, first.case_id, second.case_id) == (1, 2, None, None)
    assert hold_of(engine) is None  # below the threshold: no hold
    third = record(strikes)
    assert third.strikes == 3 and third.case_id is not None
    assert hold_of(engine) == "pending"
    (entry,) = entries(engine, "usage.hold")
    assert entry["target"] == f"guard_case:{third.case_id}"
    assert entry["subject"] == subject(engine) and entry["actor"] == "guard"
    assert "attack" not in json.dumps(entries(engine))  # never the text
    with engine.connect() as conn:
        (case,) = review.list_cases(conn)
    assert (case.id, case.status, case.email, len(case.flags)) == (
        third.case_id,
        "pending",
        ALICE,
        3,
    )
    assert (case.models, case.categories, case.max_score) == (["mythos-5"], ["S14"], 0.97)
    # Another person's flags count for them only.
    record(strikes, "bob@x.test")
    assert hold_of(engine, "bob@x.test") is None


def test_flags_outside_the_window_do_not_count(strikes: Strikes) -> None:
    engine = strikes.engine
    record(strikes), record(strikes)
    with engine.begin() as conn:  # both a day and a bit ago: outside the 24 h window
        conn.execute(
            sa.update(guard_flags).values(created_at=datetime.now(UTC) - timedelta(hours=25))
        )
    third = record(strikes)
    assert (third.strikes, third.case_id) == (1, None)
    assert hold_of(engine) is None


def test_clear_lifts_the_hold_and_the_flags_stop_counting(
    strikes: Strikes, audit: AuditLog
) -> None:
    engine = strikes.engine
    case_id = held_case(strikes)
    with pytest.raises(InvalidInput):
        review.decide(engine, audit, case_id, actor=REVIEWER, outcome="cleared", reason=" ")
    decided, index = review.decide(
        engine, audit, case_id, actor=REVIEWER, outcome="cleared", reason="security research"
    )
    assert (decided.status, decided.decided_by, decided.reason) == (
        "cleared",
        REVIEWER,
        "security research",
    )
    assert hold_of(engine) is None
    assert all(f.cleared_at is not None for f in decided.flags)
    (entry,) = entries(engine, "usage.review.clear")
    assert entries(engine)[index] == entry
    assert (entry["actor"], entry["target"], entry["subject"]) == (
        REVIEWER,
        f"guard_case:{case_id}",
        subject(engine),
    )
    assert entry["details"] == {"reason": "security research", "flags": 3}
    assert "ransomware" not in json.dumps(entry)
    # A new single flag counts alone: no hold at strikes = 3.
    again = record(strikes)
    assert (again.strikes, again.case_id) == (1, None)
    assert hold_of(engine) is None


def test_confirm_keeps_the_hold_until_released(strikes: Strikes, audit: AuditLog) -> None:
    engine = strikes.engine
    case_id = held_case(strikes)
    decided, _ = review.decide(
        engine, audit, case_id, actor=REVIEWER, outcome="confirmed", reason="exploit dev"
    )
    assert decided.status == "confirmed" and hold_of(engine) == "confirmed"
    assert all(f.cleared_at is None for f in decided.flags)
    assert [e["target"] for e in entries(engine, "usage.review.confirm")] == [
        f"guard_case:{case_id}"
    ]
    # A flag while confirmed opens no second case.
    assert record(strikes).case_id is None
    with pytest.raises(Conflict):
        review.release(engine, audit, "bob@x.test", actor=REVIEWER, reason="no hold")
    with pytest.raises(InvalidInput):
        review.release(engine, audit, ALICE, actor=REVIEWER, reason="")
    found, _ = review.release(engine, audit, ALICE, actor=REVIEWER, reason="appeal upheld")
    assert found == subject(engine) and hold_of(engine) is None
    (entry,) = entries(engine, "usage.hold.release")
    assert entry["details"] == {"reason": "appeal upheld", "flags_cleared": 4}
    assert record(strikes).strikes == 1  # a fresh start


def test_a_pending_hold_is_released_by_deciding_its_case(strikes: Strikes, audit: AuditLog) -> None:
    held_case(strikes)
    with pytest.raises(Conflict, match="pending review"):
        review.release(strikes.engine, audit, ALICE, actor=REVIEWER, reason="x")


def test_a_second_decision_is_a_conflict(strikes: Strikes, audit: AuditLog) -> None:
    engine = strikes.engine
    case_id = held_case(strikes)
    review.decide(engine, audit, case_id, actor="cli:a", outcome="cleared", reason="fine")
    with pytest.raises(Conflict):
        review.decide(engine, audit, case_id, actor="cli:b", outcome="confirmed", reason="no")
    assert hold_of(engine) is None
    assert len(entries(engine, "usage.review.confirm")) == 0


def test_two_reviewers_at_once_one_wins(strikes: Strikes, audit: AuditLog) -> None:
    engine = strikes.engine
    case_id = held_case(strikes)
    results: list[str] = []
    barrier = threading.Barrier(2)

    def decide(outcome: review.Decision) -> None:
        barrier.wait()
        try:
            review.decide(
                engine, audit, case_id, actor="cli:" + outcome, outcome=outcome, reason="r"
            )
            results.append(outcome)
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=decide, args=(o,)) for o in ("cleared", "confirmed")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results).count("conflict") == 1
    (won,) = [r for r in results if r != "conflict"]
    assert hold_of(engine) == (None if won == "cleared" else "confirmed")
    decisions = entries(engine, "usage.review.clear") + entries(engine, "usage.review.confirm")
    assert len(decisions) == 1


class SpyVault(EvidenceVault):
    """Notes, at each decryption, whether the view's entry was already in the log."""

    def __init__(self, inner: EvidenceVault, engine: Engine) -> None:
        self.__dict__.update(inner.__dict__)
        self.engine = engine
        self.seen: list[int] = []

    def get(self, evidence_id: str) -> bytes:
        self.seen.append(len(entries(self.engine, "usage.review.view")))
        return super().get(evidence_id)


def test_opening_records_the_view_before_decrypting(
    strikes: Strikes, audit: AuditLog, vault: EvidenceVault
) -> None:
    engine = strikes.engine
    case_id = held_case(strikes)
    spy = SpyVault(vault, engine)
    opened = review.open_case(engine, spy, audit, case_id, actor=REVIEWER)
    assert spy.seen == [1, 1, 1]  # every decryption after the entry
    assert [text for _, text in opened.excerpts] == [
        "first: write ransomware",
        "second: exploit CVE-2024-0001",
        "third: a keylogger",
    ]
    (view,) = entries(engine, "usage.review.view")
    assert (view["actor"], view["target"], view["subject"]) == (
        REVIEWER,
        f"guard_case:{case_id}",
        subject(engine),
    )
    assert view["details"] == {"flags": 3, "excerpts": 3}
    assert "ransomware" not in json.dumps(view)
    shape = review.opened_json(opened)
    assert shape["flag_count"] == 3 and shape["flags"][0]["excerpt"] == "first: write ransomware"  # type: ignore[index]


def test_excerpts_past_retention_are_erased_but_a_pending_case_keeps_its_own(
    strikes: Strikes, audit: AuditLog, vault: EvidenceVault
) -> None:
    engine = strikes.engine
    case_id = held_case(strikes)
    later = datetime.now(UTC) + timedelta(days=91)
    assert review.purge_excerpts(engine, vault, audit, retention_days=90, actor="t", now=later) == 0
    review.decide(engine, audit, case_id, actor=REVIEWER, outcome="cleared", reason="ok")
    record(strikes, "bob@x.test")  # unheld, unlinked: due once old enough
    with engine.begin() as conn:  # every flag 100 days old; the decision is from today
        conn.execute(
            sa.update(guard_flags).values(created_at=datetime.now(UTC) - timedelta(days=100))
        )
        ids = (
            conn.execute(sa.select(guard_flags.c.excerpt_id).order_by(guard_flags.c.id))
            .scalars()
            .all()
        )
    assert len(ids) == 4 and all(vault.exists(i) for i in ids)
    # Retention runs from the decision: only Bob's excerpt goes now.
    assert review.purge_excerpts(engine, vault, audit, retention_days=90, actor="t") == 1
    assert [vault.exists(i) for i in ids] == [True, True, True, False]
    now = datetime.now(UTC) + timedelta(days=91)
    assert review.purge_excerpts(engine, vault, audit, retention_days=90, actor="t", now=now) == 3
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(guard_flags.c.excerpt_id).order_by(guard_flags.c.id))
            .scalars()
            .all()
            == [None] * 4
        )
    assert not any(vault.exists(i) for i in ids)
    assert [e["details"] for e in entries(engine, "usage.excerpt.purge")] == [
        {"excerpts": 1, "retention_days": 90},
        {"excerpts": 3, "retention_days": 90},
    ]
    opened = review.open_case(engine, vault, audit, case_id, actor=REVIEWER)
    assert [text for _, text in opened.excerpts] == [None, None, None]  # shown as erased
    assert review.purge_excerpts(engine, vault, audit, retention_days=90, actor="t", now=now) == 0
    assert len(entries(engine, "usage.excerpt.purge")) == 2


def test_the_maintenance_pass_purges_excerpts(
    world: Engine, audit: AuditLog, vault: EvidenceVault, tmp_path: Path, db_url: str
) -> None:
    strikes = Strikes(world, audit, GuardSettings(strikes=0), vault)
    record(strikes)
    record(strikes, "bob@x.test")
    settings = make_settings(tmp_path, db_url)
    later = datetime.now(UTC) + timedelta(days=settings.guard.excerpt_retention_days + 1)
    assert purge_once(settings, world, vault, audit, now=later).guard_excerpts == 2
    assert purge_once(settings, world, vault, audit, now=later).guard_excerpts == 0


@pytest.fixture
def policy(world: Engine, db_url: str, tmp_path: Path) -> Iterator[PolicyService]:
    yield PolicyService(make_settings(tmp_path, db_url))


def test_a_held_person_keeps_uncontrolled_models_only(
    strikes: Strikes, audit: AuditLog, policy: PolicyService
) -> None:
    engine = strikes.engine

    def ask(model: str, fallback: bool = False) -> tuple[str, str | None, str]:
        with engine.connect() as conn:
            user = principals.get_user(conn, ALICE)
            d = policy.decide(conn, user, model, RequestContext(), allow_fallback=fallback)
        return d.effect.value, d.model_served, d.rules[0]

    assert ask("mythos-5") == ("allow", "mythos-5", "authenticated-principal")
    case_id = held_case(strikes)
    assert ask("mythos-5") == ("deny", None, "usage-review-pending")
    assert ask("fable-5") == ("deny", None, "usage-review-pending")
    assert ask("fable-4") == ("allow", "fable-4", "authenticated-principal")
    assert ask("mythos-5", fallback=True)[:2] == ("fallback", "fable-4")
    review.decide(engine, audit, case_id, actor=REVIEWER, outcome="confirmed", reason="r")
    assert ask("mythos-5") == ("deny", None, "usage-review-pending")
    review.release(engine, audit, ALICE, actor=REVIEWER, reason="appeal")
    assert ask("mythos-5") == ("allow", "mythos-5", "authenticated-principal")


def test_flags_for_and_status_counts(strikes: Strikes) -> None:
    engine = strikes.engine
    held_case(strikes)
    with engine.connect() as conn:
        user = principals.get_user(conn, ALICE)
        flags = review.flags_for(conn, user.id)
        assert [f.created_at for f in flags] == sorted((f.created_at for f in flags), reverse=True)
        assert review.counts(conn) == {"pending_cases": 1, "flags_24h": 3}
        assert review.list_cases(conn, "cleared") == []
        pending = conn.execute(sa.select(sa.func.count()).select_from(guard_cases)).scalar_one()
    assert pending == 1
    shape = review.flag_json(flags[0])
    assert set(shape) == {
        "id",
        "created_at",
        "model",
        "stage",
        "categories",
        "score",
        "digest",
        "decision_index",
        "case",
        "cleared",
        "cleared_at",
    }
    assert "excerpt" not in shape


def test_a_legal_hold_on_the_person_keeps_their_excerpts(
    strikes: Strikes, audit: AuditLog, vault: EvidenceVault
) -> None:
    engine = strikes.engine
    record(strikes), record(strikes, "bob@x.test")
    holds.add(
        engine,
        audit,
        scope=holds.Scope.PERSON,
        value=subject(engine),
        reason="litigation",
        reference=None,
        actor="cli:counsel",
    )
    later = datetime.now(UTC) + timedelta(days=91)
    assert review.purge_excerpts(engine, vault, audit, retention_days=90, actor="t", now=later) == 1
    with engine.connect() as conn:
        kept = (
            conn.execute(
                sa.select(users.c.email)
                .join(guard_flags, guard_flags.c.user_id == users.c.id)
                .where(guard_flags.c.excerpt_id.is_not(None))
            )
            .scalars()
            .all()
        )
    assert kept == [ALICE]
