"""Ownership screening (OFAC's 50 Percent Rule, BIS's Affiliates Rule on its dates) over declared
owners, on SQLite and PostgreSQL, and what the members of a restricted organisation are told."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.config import settings_from_mapping
from clearance.errors import InvalidInput
from clearance.policy.models import RequestContext
from clearance.policy.service import PolicyService
from clearance.principals import directory, owners, views
from clearance.principals import service as principals
from clearance.principals.models import UsPerson
from clearance.screening import ownership
from clearance.screening.models import ListFormat
from clearance.screening.service import build_matcher, load_lists, rescreen_ownership
from clearance.store.tables import orgs

from ..factories import add_catalog, make_settings, person

SDN = "Specially Designated Nationals (SDN) - Treasury Department"
ENTITY_LIST = "Entity List (EL) - Bureau of Industry and Security"
LISTED = [
    ("1", SDN, "Individual", "Viktor Alekseyevich Morozkin"),
    ("2", SDN, "Individual", "Farhad Jalali Dastgerdi"),
    ("3", ENTITY_LIST, "Entity", "Zhongshan Quantum Microsystems Company Limited"),
]
IN_FORCE = date(2026, 12, 7)  # after the suspension's year
SUSPENDED = date(2026, 3, 1)  # 10 Nov 2025 to 10 Nov 2026: the Affiliates Rule suspended


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> Iterator[Engine]:
    lists = tmp_path / "csl.csv"
    with lists.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["_id", "source", "type", "name"])
        out.writerows(LISTED)
    load_lists(engine, [lists], ListFormat.CSL)
    with engine.begin() as conn:
        for name in ("Alpha Labs", "Beta Labs", "Gamma Holdings", "Delta Labs", "Epsilon Labs",
                     "Mid Holdings"):  # fmt: skip
            principals.add_org(conn, name, "US")
        add = _adder(conn)
        add("Alpha Labs", "person", "Viktor Alekseyevich Morozkin", 30)
        add("Alpha Labs", "person", "Farhad Jalali Dastgerdi", 25)
        add("Alpha Labs", "person", "Jane Doe", 45)
        add("Beta Labs", "person", "Viktor Alekseyevich Morozkin", 40)
        add("Gamma Holdings", "entity", "Zhongshan Quantum Microsystems Company Limited", 100)
        add("Delta Labs", "org", "Gamma Holdings", 60)
        # Not multiplied along a chain: 40 % of Mid (not blocked) passes nothing on.
        add("Mid Holdings", "person", "Viktor Alekseyevich Morozkin", 40)
        add("Epsilon Labs", "org", "Mid Holdings", 100)
    yield engine


def _adder(conn: sa.Connection):  # type: ignore[no-untyped-def]
    def add(org: str, kind: str, name: str, percent: float) -> None:
        owners.add_owner(
            conn, org, kind=kind, name=name, percent=percent, country_code=None, actor="cli:t"
        )

    return add


def _screen(engine: Engine, day: date) -> dict[str, dict[str, object]]:
    with engine.begin() as conn:
        rescreen_ownership(conn, build_matcher(conn), day=day)
    with engine.connect() as conn:
        names = [r.name for r in conn.execute(sa.select(orgs.c.name))]
        return {n: views.org_json(directory.get_org(conn, n), 0) for n in names}


def test_shares_of_blocked_owners_add_up_and_run_down_a_chain(world: Engine) -> None:
    found = _screen(world, IN_FORCE)
    alpha = found["Alpha Labs"]
    assert (alpha["restricted_by_ownership"], alpha["listed_owner_share"]) == (True, 55.0)
    assert alpha["screening_status"] == "restricted_by_ownership"
    assert alpha["ownership_rule"] == "ofac-50-percent"
    assert {p["owner"] for p in alpha["ownership_path"]} == {  # type: ignore[union-attr]
        "Viktor Alekseyevich Morozkin",
        "Farhad Jalali Dastgerdi",
    }
    beta = found["Beta Labs"]  # 40 %: not restricted, but over the review threshold
    assert (beta["ownership_status"], beta["listed_owner_share"]) == ("review", 40.0)
    assert beta["screening_status"] == "potential_match"
    # An Entity List party owns Gamma outright; Gamma owns 60 % of Delta: both restricted
    # under the Affiliates Rule, on days it is in force.
    for name in ("Gamma Holdings", "Delta Labs"):
        assert found[name]["ownership_rule"] == "bis-affiliates-rule"
        assert found[name]["restricted_by_ownership"] is True
    assert found["Delta Labs"]["listed_owner_share"] == 60.0
    # 40 % of Mid, which owns all of Epsilon: neither is blocked (shares are not multiplied).
    assert found["Mid Holdings"]["ownership_status"] == "review"
    assert found["Epsilon Labs"]["ownership_status"] == "clear"


def test_the_affiliates_rule_applies_only_on_the_days_it_is_in_force(world: Engine) -> None:
    suspended = _screen(world, SUSPENDED)
    assert suspended["Delta Labs"]["ownership_status"] == "clear"
    assert suspended["Gamma Holdings"]["ownership_status"] == "clear"
    assert suspended["Alpha Labs"]["restricted_by_ownership"] is True  # OFAC's rule: always
    before = _screen(world, date(2025, 9, 1))  # before it took effect
    assert before["Delta Labs"]["ownership_status"] == "clear"
    again = _screen(world, IN_FORCE)
    assert again["Delta Labs"]["restricted_by_ownership"] is True
    rule = ownership.rule_by_id("bis-affiliates-rule")
    assert rule is not None and "90 FR 47201" in rule.citation
    assert not rule.in_force(SUSPENDED) and rule.in_force(IN_FORCE)


def test_members_of_a_restricted_org_get_451_without_the_list(
    world: Engine, tmp_path: Path, db_url: str
) -> None:
    with world.begin() as conn:
        add_catalog(conn)
        person(conn, "worker@alpha.test", ["US"], UsPerson.CITIZEN, org="Alpha Labs")
        person(conn, "worker@beta.test", ["US"], UsPerson.CITIZEN, org="Beta Labs")
    _screen(world, IN_FORCE)
    service = PolicyService(make_settings(tmp_path, db_url))
    with world.connect() as conn:
        alpha = principals.get_user(conn, "worker@alpha.test")
        beta = principals.get_user(conn, "worker@beta.test")
        refused = service.decide(conn, alpha, "fable-4", RequestContext(), allow_fallback=True)
        held = service.decide(conn, beta, "mythos-5", RequestContext(), allow_fallback=False)
        open_ = service.decide(conn, beta, "fable-4", RequestContext(), allow_fallback=False)
    first = refused.reasons[0]
    assert (refused.effect.value, first.rule, first.status) == (
        "deny",
        "restricted-by-ownership",
        451,
    )
    for word in ("SDN", "Specially Designated", "Entity List", "Morozkin"):
        assert word not in first.reason  # no tip-off: the member is not told which list
    assert "31 CFR 501" in first.legal_basis
    assert held.reasons[0].rule == "ownership-review" and open_.allowed


def test_bad_declarations_are_refused_by_name(world: Engine) -> None:
    with world.begin() as conn:
        add = _adder(conn)
        with pytest.raises(InvalidInput, match="at most 100"):
            add("Alpha Labs", "person", "Someone Else", 1)  # 100 % already declared
        with pytest.raises(InvalidInput, match="above 0"):
            add("Beta Labs", "person", "Nobody", 0)
        with pytest.raises(InvalidInput, match="cycle"):
            add("Mid Holdings", "org", "Epsilon Labs", 10)  # Mid owns Epsilon already
        with pytest.raises(InvalidInput, match="cycle"):
            add("Beta Labs", "org", "Beta Labs", 10)


def test_the_daily_pass_applies_a_dated_rule_when_its_day_comes(
    world: Engine, tmp_path: Path, db_url: str
) -> None:
    """No list changes at midnight when a suspension ends: the maintenance pass computes
    ownership once a UTC day, so the rule starts applying that day."""
    from clearance.audit.service import AuditLog
    from clearance.maintenance import Maintenance

    settings = make_settings(tmp_path, db_url)
    days = iter([SUSPENDED, IN_FORCE])
    today = [next(days)]
    log = AuditLog(world, settings.audit)
    try:
        daily = Maintenance(
            settings, world, log, clock=lambda: datetime.combine(today[0], time(12), UTC)
        )
        daily.ownership_once()
        assert _status(world, "Delta Labs") == "clear"
        assert daily.ownership_once() == 0  # once a day
        today[0] = next(days)
        assert daily.ownership_once() >= 2  # Gamma and Delta
        assert _status(world, "Delta Labs") == "restricted"
    finally:
        log.close()


def _status(engine: Engine, name: str) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(sa.select(orgs.c.ownership_status).where(orgs.c.name == name)).scalar_one()
        )


def _with_headquarters_rule() -> str:
    """The default pack with its off-by-default headquarters test switched on."""
    from clearance.policy.engine import DEFAULT_PACK

    head, _, rest = DEFAULT_PACK.partition("// BEGIN headquarters-d5-or-macau\n")
    block, _, tail = rest.partition("// END headquarters-d5-or-macau\n")
    assert block, "the pack ships the rule, commented out"
    return head + "".join(line.removeprefix("// ") for line in block.splitlines(True)) + tail


@pytest.mark.parametrize(
    ("headquarters", "parent", "refused"),
    [("CN", "", True), ("MO", "", True), ("SG", "CN", True), ("SG", "GB", False), ("", "", False)],
)
def test_the_headquarters_and_parent_test_is_a_few_lines_of_cedar(
    engine: Engine, tmp_path: Path, db_url: str, headquarters: str, parent: str, refused: bool
) -> None:
    from clearance.principals.directory import update_org

    with engine.begin() as conn:
        add_catalog(conn)
        principals.add_org(conn, "Overseas Labs", "SG")
        update_org(conn, "Overseas Labs", kyb={
            "legal_name": "Overseas Labs Pte. Ltd.", "registration_number": "201912345K",
            "headquarters_country": headquarters, "ultimate_parent_country": parent,
        })  # fmt: skip
        person(conn, "eng@overseas.test", ["US"], UsPerson.CITIZEN, org="Overseas Labs")
    off = PolicyService(make_settings(tmp_path, db_url))  # the pack as shipped
    (tmp_path / "policy" / "default.cedar").write_text(_with_headquarters_rule())
    on = PolicyService(settings_from_mapping(
        {"clearance": {"database_url": db_url}}, base=tmp_path
    ))  # fmt: skip
    with engine.connect() as conn:
        user = principals.get_user(conn, "eng@overseas.test")
        default = off.decide(conn, user, "mythos-5", RequestContext(), allow_fallback=False)
        applied = on.decide(conn, user, "mythos-5", RequestContext(), allow_fallback=False)
        shown = views.org_json(directory.get_org(conn, "Overseas Labs"), 0)
    assert default.allowed  # off by default
    assert applied.allowed is not refused
    if refused:
        assert applied.reasons[0].rule == "headquarters-d5-or-macau"
    assert shown["legal_name"] == "Overseas Labs Pte. Ltd."
    assert shown["headquarters_country"] == (headquarters or None)
