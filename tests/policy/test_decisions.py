"""The directive's hard cases, end to end through the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from clearance.catalog import service as catalog
from clearance.config.loader import settings_from_mapping
from clearance.errors import Conflict, NotFound
from clearance.policy.engine import DEFAULT_PACK
from clearance.policy.models import Decision, RequestContext
from clearance.policy.service import PolicyService
from clearance.principals import service as principals
from clearance.principals.directory import suspend_user
from clearance.principals.models import UsPerson

from ..factories import add_catalog, make_settings, person

TODAY = date.today()


@pytest.fixture
def world(engine: Engine, db_url: str, tmp_path: Path) -> Iterator[tuple[Engine, PolicyService]]:
    with engine.begin() as conn:
        add_catalog(conn)
        principals.add_org(conn, "Acme", "US")
        principals.add_licence(
            conn,
            org="Acme",
            model_id="fable-5",
            nationalities=["SE"],
            number="D123456",
            expires=TODAY + timedelta(days=90),
        )
        person(conn, "us@x.test", ["US"], UsPerson.CITIZEN)
        person(conn, "se@x.test", ["SE"])
        person(conn, "usse@x.test", ["US", "SE"], UsPerson.CITIZEN)
        person(conn, "secn@x.test", ["SE", "CN"], org="Acme")
        person(conn, "lpr@x.test", ["MX"], UsPerson.LPR)
        person(conn, "prot@x.test", ["AF"], UsPerson.PROTECTED)
        person(conn, "eng@x.test", ["SE"], org="Acme")
        person(conn, "old@x.test", ["US"], UsPerson.CITIZEN, expires=TODAY - timedelta(days=1))
        person(conn, "usir@x.test", ["US", "IR"], UsPerson.CITIZEN)
        person(conn, "ir@x.test", ["IR"])
        person(conn, "new@x.test")
    yield engine, PolicyService(make_settings(tmp_path, db_url))


def decide(
    world: tuple[Engine, PolicyService],
    email: str,
    model: str,
    *,
    ip_country: str = "",
    fallback: bool = True,
) -> Decision:
    engine, service = world
    with engine.connect() as conn:
        user = principals.get_user(conn, email)
        return service.decide(
            conn, user, model, RequestContext(ip_country=ip_country), allow_fallback=fallback
        )


@pytest.mark.parametrize(
    ("email", "model", "effect", "served", "rule"),
    [
        ("us@x.test", "mythos-5", "allow", "mythos-5", "authenticated-principal"),
        ("usse@x.test", "mythos-5", "allow", "mythos-5", "authenticated-principal"),
        ("lpr@x.test", "fable-5", "allow", "fable-5", "authenticated-principal"),
        ("prot@x.test", "fable-5", "allow", "fable-5", "authenticated-principal"),
        ("eng@x.test", "fable-5", "allow", "fable-5", "authenticated-principal"),
        ("usir@x.test", "fable-5", "allow", "fable-5", "authenticated-principal"),
        # Licence for fable-5 only: mythos-5 falls back to the licensed fable-5.
        ("eng@x.test", "mythos-5", "fallback", "fable-5", "controlled-foreign-person"),
        # Two hops, the first denied: mythos-5 -> fable-5 (denied) -> fable-4.
        ("se@x.test", "mythos-5", "fallback", "fable-4", "controlled-foreign-person"),
        ("secn@x.test", "fable-5", "fallback", "fable-4", "controlled-licence-not-covering"),
        ("old@x.test", "fable-5", "fallback", "fable-4", "controlled-verification-expired"),
        ("new@x.test", "fable-5", "fallback", "fable-4", "controlled-requires-verification"),
        ("new@x.test", "fable-4", "allow", "fable-4", "authenticated-principal"),
        ("ir@x.test", "fable-4", "deny", None, "embargoed-nationality"),
    ],
)
def test_directive_cases(
    world: tuple[Engine, PolicyService],
    email: str,
    model: str,
    effect: str,
    served: str | None,
    rule: str,
) -> None:
    d = decide(world, email, model)
    assert (d.effect.value, d.model_served) == (effect, served)
    assert rule in d.rules
    assert all(r.reason and r.legal_basis for r in d.reasons)


def test_fallback_switched_off_denies(world: tuple[Engine, PolicyService]) -> None:
    d = decide(world, "se@x.test", "mythos-5", fallback=False)
    assert d.effect.value == "deny" and d.model_served is None
    assert d.rules == ("controlled-foreign-person",)


def test_us_citizen_in_embargoed_country_is_denied_everything(
    world: tuple[Engine, PolicyService],
) -> None:
    d = decide(world, "us@x.test", "mythos-5", ip_country="IR")
    assert d.effect.value == "deny"
    assert "embargoed-location" in d.rules


def test_suspended_fallback_target_is_skipped_and_change_applies_at_once(
    world: tuple[Engine, PolicyService],
) -> None:
    engine, _ = world
    assert decide(world, "se@x.test", "mythos-5").model_served == "fable-4"
    with engine.begin() as conn:
        catalog.suspend(conn, "fable-4", "incident 42")
    d = decide(world, "se@x.test", "mythos-5")
    assert d.effect.value == "deny"
    direct = decide(world, "us@x.test", "fable-4")
    assert direct.rules == ("model-suspended",)
    assert "incident 42" in direct.reasons[0].reason
    with engine.begin() as conn:
        catalog.resume(conn, "fable-4")
    assert decide(world, "us@x.test", "fable-4").effect.value == "allow"


def test_expired_licence_denies_with_its_own_rule(world: tuple[Engine, PolicyService]) -> None:
    engine, _ = world
    with engine.begin() as conn:
        principals.add_org(conn, "Globex", "US")
        principals.add_licence(
            conn,
            org="Globex",
            model_id="fable-5",
            nationalities=["DE"],
            number="D9",
            expires=TODAY - timedelta(days=1),
        )
        person(conn, "de@x.test", ["DE"], org="Globex")
    d = decide(world, "de@x.test", "fable-5", fallback=False)
    assert d.rules == ("controlled-licence-expired",)


def test_new_identity_fact_takes_effect_on_next_decision(
    world: tuple[Engine, PolicyService],
) -> None:
    engine, _ = world
    assert decide(world, "new@x.test", "fable-5", fallback=False).effect.value == "deny"
    with engine.begin() as conn:
        user = principals.get_user(conn, "new@x.test")
        principals.set_identity(
            conn,
            user.id,
            nationalities=["US"],
            us_person=UsPerson.CITIZEN,
            method=principals.Method.IN_PERSON,
            source="attestation",
            expires=None,
            max_age_days=365,
        )
    assert decide(world, "new@x.test", "fable-5", fallback=False).effect.value == "allow"


def test_fallback_cycle_is_refused(world: tuple[Engine, PolicyService]) -> None:
    engine, _ = world
    with pytest.raises(Conflict, match="cycle"), engine.begin() as conn:
        catalog.set_fallbacks(conn, "fable-4", ("mythos-5",))


def test_unknown_model_is_an_error_not_a_decision(world: tuple[Engine, PolicyService]) -> None:
    with pytest.raises(NotFound):
        decide(world, "us@x.test", "gpt-99")


def test_a_policy_written_before_the_newer_controls_still_enforces_them(
    world: tuple[Engine, PolicyService], tmp_path: Path, db_url: str
) -> None:
    """An instance's policy file is its own copy, made by the `clearance init` of its day: one
    without the retirement and account-suspension rules still gets them (packs/controls.cedar),
    so an upgrade never makes a suspension or a retirement fail open."""
    old = DEFAULT_PACK
    for rule in ("model-retired", "account-suspended"):
        old = re.sub(rf'@id\("{rule}"\)\n(?:@[^\n]*\n)*forbid[^;]*;\n', "", old)
    assert "model-retired" not in old and "account-suspended" not in old
    (tmp_path / "policy" / "default.cedar").write_text(old)
    engine, _ = world
    service = PolicyService(
        settings_from_mapping({"clearance": {"database_url": db_url}}, base=tmp_path)
    )
    with engine.begin() as conn:
        suspend_user(conn, "us@x.test", "drill")
        catalog.retire(conn, "fable-4", "end of life")
    with engine.connect() as conn:
        user = principals.get_user(conn, "us@x.test")
        refused = service.decide(conn, user, "mythos-5", RequestContext(), allow_fallback=True)
        other = principals.get_user(conn, "usse@x.test")
        retired = service.decide(conn, other, "fable-4", RequestContext(), allow_fallback=True)
    assert (refused.effect.value, refused.rules[0]) == ("deny", "account-suspended")
    assert (retired.effect.value, retired.rules[0]) == ("deny", "model-retired")
