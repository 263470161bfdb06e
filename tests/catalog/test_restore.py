"""Phased restore after a kill switch (issue 17, item 3): a stable share of people, named orgs or
internal users first, then wider; outsiders refused by `model-restoring` and sent along the
fallback chain; every step an audit entry. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from clearance.catalog import actions
from clearance.catalog import service as catalog
from clearance.catalog.models import Catalog, Model
from clearance.catalog.restore import OrgRef, RestoreCohort, bucket
from clearance.errors import Conflict, InvalidInput, NotFound
from clearance.policy.decide import Decider
from clearance.policy.engine import CONTROLS, DEFAULT_PACK, PolicyEngine, with_controls
from clearance.policy.models import Decision, PrincipalFacts, RequestContext
from clearance.policy.service import PolicyService
from clearance.principals import service as principals
from clearance.principals.models import UsPerson

from ..factories import add_catalog, make_settings, person

ENGINE = PolicyEngine(DEFAULT_PACK)
SUBJECTS = [f"sub_{i:04d}" for i in range(200)]


def facts(subject: str, org_id: int | None = None) -> PrincipalFacts:
    return PrincipalFacts(subject, frozenset(), "none", 0, "", "clear", org_id, 1)


def served_at(cohort: RestoreCohort | None, version: int) -> dict[str, Decision]:
    models = {
        "m": Model(
            "m", "up", "m", controlled=False, rationale="t", fallbacks=("f",), restore=cohort
        ),
        "f": Model("f", "up", "f", controlled=False, rationale="t"),
    }
    decider = Decider(ENGINE, ("IR",), cache_size=1000)
    return {
        s: decider.decide(
            facts(s),
            "m",
            RequestContext(),
            catalog=Catalog(version, {}, models),
            licences={},
            licences_version=1,
            allow_fallback=True,
        )
        for s in SUBJECTS
    }


def test_percentage_is_stable_by_subject_and_only_widens() -> None:
    at_10 = served_at(RestoreCohort(percent=10), 1)
    at_50 = served_at(RestoreCohort(percent=50), 2)
    in_10 = {s for s, d in at_10.items() if d.model_served == "m"}
    in_50 = {s for s, d in at_50.items() if d.model_served == "m"}
    assert 8 <= len(in_10) <= 35, len(in_10)  # ~10 % of 200
    assert 75 <= len(in_50) <= 125, len(in_50)  # ~50 % of 200
    assert in_10 < in_50  # whoever was in at 10 % is still in at 50 %
    assert in_10 == {s for s in SUBJECTS if bucket(s, "m") < 10}
    # The others fall back, refused `m` by its own rule, with its reason and legal basis.
    outside = at_10[min(set(SUBJECTS) - in_10)]
    assert (outside.effect.value, outside.model_served, outside.rules) == (
        "fallback",
        "f",
        ("model-restoring",),
    )
    assert outside.reasons[0].reason and "phased restore" in outside.reasons[0].legal_basis
    # Another model's 10 % is drawn independently.
    assert in_10 != {s for s in SUBJECTS if bucket(s, "other") < 10}
    # Everyone once the restore is over.
    assert all(d.model_served == "m" for d in served_at(None, 3).values())


def test_org_cohort_admits_members_only() -> None:
    cohort = RestoreCohort(orgs=(OrgRef(7, "Acme"),))
    assert cohort.admits("m", "sub_x", 7)
    assert not cohort.admits("m", "sub_x", 8) and not cohort.admits("m", "sub_x", None)
    assert cohort.widen(percent=20).percent == 20 and cohort.widen(percent=20).orgs == cohort.orgs


def test_the_rule_is_an_operator_control_for_older_policy_files() -> None:
    """An instance's policy written before phased restore still enforces it."""
    assert '@id("model-restoring")' in CONTROLS
    old = DEFAULT_PACK.replace('@id("model-restoring")', '@id("old-restoring")')
    assert with_controls(old).count('@id("model-restoring")') == 1


def decide(engine: Engine, service: PolicyService, email: str, model: str) -> Decision:
    with engine.connect() as conn:
        user = principals.get_user(conn, email)
        return service.decide(conn, user, model, RequestContext(), allow_fallback=True)


def test_suspend_then_restore_in_phases_through_the_store(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    with engine.begin() as conn:
        add_catalog(conn)  # fable-5 -> fable-4
        principals.add_org(conn, "Acme", "US")
        principals.add_org(conn, "Labs", "US")
        person(conn, "acme@x.test", ["US"], UsPerson.CITIZEN, org="Acme")
        person(conn, "labs@x.test", ["US"], UsPerson.CITIZEN, org="Labs")
        person(conn, "solo@x.test", ["US"], UsPerson.CITIZEN)
    service = PolicyService(make_settings(tmp_path, db_url))
    entries: list[tuple[str, str, dict[str, object]]] = []

    def record(action: str, target: str, details: dict[str, object]) -> int:
        entries.append((action, target, details))
        return len(entries) - 1

    everyone = ("acme@x.test", "labs@x.test", "solo@x.test")

    def served() -> dict[str, str | None]:
        return {e: decide(engine, service, e, "fable-5").model_served for e in everyone}

    with engine.begin() as conn:
        with pytest.raises(Conflict, match="not suspended"):
            catalog.restore(conn, "fable-5", percent=10)
        catalog.suspend(conn, "fable-5", "incident 42")
    assert set(served().values()) == {"fable-4"}  # everyone refused, sent to the fallback

    result = actions.resume(engine, record, "fable-5", orgs=("Acme",), reason="canary")
    assert (result["status"], result["restore"]) == (
        "restoring",
        {"percent": 0, "orgs": ["Acme"], "internal": False},
    )
    assert served() == {
        "acme@x.test": "fable-5",
        "labs@x.test": "fable-4",
        "solo@x.test": "fable-4",
    }
    d = decide(engine, service, "labs@x.test", "fable-5")
    assert d.rules == ("model-restoring",)

    actions.resume(engine, record, "fable-5", internal_orgs=("Labs",), reason="staff")
    assert served() == {
        "acme@x.test": "fable-5",
        "labs@x.test": "fable-5",
        "solo@x.test": "fable-4",
    }

    with pytest.raises(NotFound, match="Nowhere"):
        actions.resume(engine, record, "fable-5", orgs=("Nowhere",))
    with pytest.raises(InvalidInput, match="internal_orgs"):
        actions.resume(engine, record, "fable-5", internal_orgs=())
    with pytest.raises(InvalidInput, match="one of"):
        actions.resume(engine, record, "fable-5", percent=5, orgs=("Acme",))
    actions.resume(engine, record, "fable-5", percent=30)
    with pytest.raises(Conflict, match="only widen"):
        actions.resume(engine, record, "fable-5", percent=10)

    result = actions.resume(engine, record, "fable-5", reason="all clear")
    assert (result["status"], result["restore"]) == ("active", None)
    assert set(served().values()) == {"fable-5"}

    # Each step an entry: the cohort after it, the one before, and why.
    assert [e[0] for e in entries] == ["model.resume"] * 4
    first, internal, percent, full = (e[2] for e in entries)
    assert first == {
        "reason": "canary",
        "status": "restoring",
        "cohort": {"percent": 0, "orgs": ["Acme"], "internal": False},
        "previous_cohort": None,
    }
    assert internal["cohort"] == {"percent": 0, "orgs": ["Acme", "Labs"], "internal": True}
    assert percent["cohort"] == {"percent": 30, "orgs": ["Acme", "Labs"], "internal": True}
    assert (full["cohort"], full["previous_cohort"], full["reason"]) == (
        "everyone",
        percent["cohort"],
        "all clear",
    )

    # A new suspension ends the restore; the next one starts from nobody.
    with engine.begin() as conn:
        catalog.suspend(conn, "fable-5", "again")
        assert catalog.load_catalog(conn).models["fable-5"].restore is None
        model, before = catalog.restore(conn, "fable-5", percent=100)
    assert (model.state, before) == ("active", None)
