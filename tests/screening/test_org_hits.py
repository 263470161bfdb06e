"""An organisation's screening hits, on SQLite and PostgreSQL: stored like a person's, decided by
an operator (`resolve_org`), a false positive holding until the list changes what it says of the
entry, a true match confirming it; every status change reaches the members' facts."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.errors import Conflict, InvalidInput, NotFound
from clearance.policy.models import RequestContext
from clearance.policy.service import PolicyService
from clearance.principals import service as principals
from clearance.principals.models import UsPerson
from clearance.screening import hits, service
from clearance.screening.hits import Holder
from clearance.screening.models import ListFormat, Outcome
from clearance.screening.tables import screening_hits
from clearance.store.tables import orgs, users

from ..factories import add_catalog, make_settings, person
from .test_service import Collected

ORG = "Quantum Microsystems"  # a potential match for the listed entity below, and not it
MEMBER = "ada@quantum.test"
EL = "Entity List (EL) - Bureau of Industry and Security"
LISTED = [
    ("csl-7", EL, "Entity", "Zhongshan Quantum Microsystems Company Limited", "CHINA-EL"),
    ("csl-8", EL, "Entity", "Ostrava Photonics Research Institute", ""),
]


@dataclass(frozen=True, slots=True)
class World:
    engine: Engine
    org_id: int
    lists: Path
    policy: PolicyService


def write_list(path: Path, rows: list[tuple[str, ...]]) -> Path:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["_id", "source", "type", "name", "programs"])
        out.writerows(rows)
    return path


@pytest.fixture
def world(engine: Engine, db_url: str, tmp_path: Path) -> Iterator[World]:
    with engine.begin() as conn:
        add_catalog(conn)
        org_id = principals.add_org(conn, ORG, "US").id
        person(conn, MEMBER, ["US"], UsPerson.CITIZEN, org=ORG)
    lists = write_list(tmp_path / "csl.csv", LISTED)
    service.load_lists(engine, [lists], ListFormat.CSL, name="csl")
    yield World(engine, org_id, lists, PolicyService(make_settings(tmp_path, db_url)))


def org_status(w: World) -> str:
    with w.engine.connect() as conn:
        return str(conn.scalar(sa.select(orgs.c.screening_status).where(orgs.c.id == w.org_id)))


def facts_version(w: World) -> int:
    with w.engine.connect() as conn:
        return int(conn.scalar(sa.select(users.c.facts_version).where(users.c.email == MEMBER)))


def controlled_allowed(w: World) -> bool:
    with w.engine.connect() as conn:
        member = principals.get_user(conn, MEMBER)
        decision = w.policy.decide(conn, member, "mythos-5", RequestContext(), allow_fallback=False)
    return decision.allowed


def resolve(
    w: World,
    resolution: service.Resolution,
    reason: str = "a US company in Austin, not the listed Zhongshan entity",
    *,
    audit: Collected | None = None,
    pending: str | None = None,
) -> Outcome:
    result = service.resolve_org(
        w.engine, w.org_id, "csl", "csl-7", resolution, reason, actor="t", audit=audit,
        pending=pending,
    )  # fmt: skip
    return result.status


def test_an_org_matching_a_listed_entity_gets_its_hits_stored(world: World) -> None:
    with world.engine.connect() as conn:
        (hit,) = hits.for_org(conn, world.org_id)
        listed = [hits.current(conn, world.org_id, "csl", "csl-7", Holder.ORG)]
        people = conn.scalar(sa.select(sa.func.count()).select_from(screening_hits))
    assert (hit.holder, hit.org_id, hit.user_id) == (Holder.ORG, world.org_id, None)
    assert (hit.list_name, hit.entry_id, hit.outcome) == ("csl", "csl-7", Outcome.POTENTIAL_MATCH)
    assert len(hit.entry_hash) == 64 and listed == [hit]
    assert people == 0  # the member is not the one matched
    assert org_status(world) == "potential_match"
    assert not controlled_allowed(world)
    with world.engine.connect() as conn:
        assert hits.pending(conn, 10, Holder.ORG) == [hit]
        assert hits.pending(conn, 10) == []  # people's queue: unchanged


def test_a_false_positive_clears_the_org_until_the_list_changes_the_entry(world: World) -> None:
    before = facts_version(world)
    audit = Collected()

    assert resolve(world, service.Resolution.FALSE_POSITIVE, audit=audit) is Outcome.CLEAR
    assert org_status(world) == "clear"
    assert facts_version(world) == before + 1  # every worker decides the member afresh
    assert controlled_allowed(world)
    resolved, decision = audit.entries
    assert (resolved["action"], resolved["subject"]) == ("screening_resolve", f"org:{world.org_id}")
    assert resolved["details"]["resolution"] == "false_positive"  # type: ignore[index]
    assert "Austin" not in json.dumps(audit.entries)  # the reason is digested, not logged
    assert (decision["type"], decision["status"]) == ("screening_decision", "clear")
    assert decision["subject"] == f"org:{world.org_id}"
    with world.engine.connect() as conn:
        assert hits.pending(conn, 10, Holder.ORG) == []

    # Re-screening against the same entry, and a change to another entry, keep it cleared...
    service.rescreen_all(world.engine)
    other = [*LISTED[:1], (*LISTED[1][:4], "NEW-PROGRAM")]
    service.load_lists(world.engine, [write_list(world.lists, other)], ListFormat.CSL, name="csl")
    assert org_status(world) == "clear" and facts_version(world) == before + 1
    # ...until the list changes what it says about that entry: the hit is back, pending.
    changed = [(*LISTED[0][:4], "CHINA-EL; RUSSIA-EO14024"), LISTED[1]]
    service.load_lists(world.engine, [write_list(world.lists, changed)], ListFormat.CSL, name="csl")
    assert org_status(world) == "potential_match"
    assert facts_version(world) == before + 2
    assert not controlled_allowed(world)
    with world.engine.connect() as conn:
        assert [h.entry_id for h in hits.pending(conn, 10, Holder.ORG)] == ["csl-7"]


def test_a_true_match_confirms_the_org_and_blocks_every_model(world: World) -> None:
    before = facts_version(world)
    assert resolve(world, service.Resolution.TRUE_MATCH) is Outcome.MATCH
    assert org_status(world) == "confirmed_match"
    assert facts_version(world) == before + 1
    with world.engine.connect() as conn:
        member = principals.get_user(conn, MEMBER)
        open_ = world.policy.decide(conn, member, "fable-4", RequestContext(), allow_fallback=False)
    assert not open_.allowed and open_.reasons[0].rule == "restricted-party"


def test_deciding_needs_a_reason_a_current_hit_and_a_fresh_form(world: World) -> None:
    with pytest.raises(InvalidInput, match="reason"):
        resolve(world, service.Resolution.FALSE_POSITIVE, reason="  ")
    with pytest.raises(NotFound, match=f"{ORG} has no current hit on csl entry csl-8"):
        service.resolve_org(
            world.engine, world.org_id, "csl", "csl-8", service.Resolution.TRUE_MATCH, "x"
        )
    with pytest.raises(NotFound, match="unknown organisation"):
        service.resolve_org(
            world.engine, world.org_id + 99, "csl", "csl-7", service.Resolution.TRUE_MATCH, "x"
        )
    with world.engine.connect() as conn:
        shown = hits.for_org(conn, world.org_id)[0].entry_hash
    with pytest.raises(Conflict, match="the list or the organisation changed") as stale:
        resolve(world, service.Resolution.FALSE_POSITIVE, pending="0" * 64)
    assert stale.value.status == 409
    assert resolve(world, service.Resolution.TRUE_MATCH, pending=shown) is Outcome.MATCH
    with pytest.raises(Conflict, match=r"decided \(true_match\) since you opened it"):
        resolve(world, service.Resolution.FALSE_POSITIVE, pending=shown)
    assert org_status(world) == "confirmed_match"
