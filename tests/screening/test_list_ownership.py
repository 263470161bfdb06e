"""Ownership the list data carries (FtM `Ownership` records): kept with the list version and part
of the ownership graph, so an unlisted company owned by a listed one restricts what it owns."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.principals import directory, owners, views
from clearance.principals import service as principals
from clearance.screening.loaders import load
from clearance.screening.models import ListFormat
from clearance.screening.service import build_matcher, load_lists, rescreen_ownership
from clearance.screening.tables import list_ownership
from clearance.store.tables import orgs

IN_FORCE = date(2026, 12, 7)
SUSPENDED = date(2026, 3, 1)


def _company(id_: str, name: str, *, target: bool, datasets: list[str]) -> dict[str, object]:
    return {
        "id": id_,
        "schema": "Company",
        "target": target,
        "datasets": datasets,
        "properties": {"name": [name], "country": ["ru"]},
    }


def _owns(
    id_: str, owner: str, asset: str, percentage: str, **more: list[str]
) -> dict[str, object]:
    props: dict[str, list[str]] = {"owner": [owner], "asset": [asset], "percentage": [percentage]}
    return {"id": id_, "schema": "Ownership", "properties": props | more}


LIST = [
    _company("L1", "Severnaya Orbital Holdings JSC", target=True, datasets=["us_ofac_sdn"]),
    _company("U1", "Nordwind Trading LLC", target=False, datasets=["us_ofac_sdn"]),
    _company("U2", "Baltic Relay Systems LLC", target=False, datasets=["us_ofac_sdn"]),
    _company("U3", "Volga Optic Works LLC", target=False, datasets=["us_ofac_sdn"]),
    _owns("O1", "L1", "U1", "60%"),  # U1: blocked by the 50 % rule, though not listed
    _owns("O2", "L1", "U2", "40"),  # U2: 40 %, not blocked
    _owns("O3", "U1", "U3", "100"),  # U3: owned by blocked U1, so blocked too
    _owns("O4", "L1", "NOT-IN-FILE", "100"),
    _owns("O5", "L1", "U2", "a lot"),
    _owns("O6", "L1", "U2", "30", endDate=["2001-01-01"]),
    {"id": "S1", "schema": "Sanction", "properties": {"entity": ["L1"]}},
]
BIS = [
    _company(
        "E1",
        "Zhongshan Quantum Microsystems Company Limited",
        target=True,
        datasets=["us_bis_entity"],
    ),
    _company("P1", "Pearl River Components Ltd", target=False, datasets=["us_bis_entity"]),
    _owns("B1", "E1", "P1", "100"),
]


def _jsonl(records: list[dict[str, object]]) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in records) + b"\n"


def test_the_loader_keeps_ownership_between_named_parties() -> None:
    report = load(ListFormat.FTM, [("list.jsonl", _jsonl(LIST))])
    assert [e.entry_id for e in report.entries] == ["L1"]  # only the target is an entry
    held = {h.record_id: h for h in report.ownership}
    assert set(held) == {"O1", "O2", "O3"}
    assert (held["O1"].owner_name, held["O1"].asset_name, held["O1"].percent) == (
        "Severnaya Orbital Holdings JSC",
        "Nordwind Trading LLC",
        60.0,
    )
    assert held["O1"].asset_country == "RU"
    assert report.skipped == {
        "non-target entities": 3,
        "Sanction records": 1,
        "Ownership records naming a party not in the file": 1,
        "Ownership records without a readable share": 1,
        "Ownership records that have ended": 1,
    }


def test_an_org_owned_by_an_unlisted_company_the_list_says_is_blocked(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "sdn.jsonl"
    path.write_bytes(_jsonl(LIST))
    load_lists(engine, [path], ListFormat.FTM, name="sdn")
    bis = tmp_path / "bis.jsonl"
    bis.write_bytes(_jsonl(BIS))
    load_lists(engine, [bis], ListFormat.FTM, name="bis")
    with engine.begin() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(list_ownership)).scalar() == 4
        for name in ("Harbor Labs", "Quay Labs", "Pier Labs", "Dock Labs", "Volga Optic Works"):
            principals.add_org(conn, name, "US")
        principals.add_org(conn, "Nordwind Trading LLC", "RU")

        def add(org: str, owner: str, percent: float) -> None:
            owners.add_owner(conn, org, kind="entity", name=owner, percent=percent,
                             country_code=None, actor="cli:t")  # fmt: skip

        add("Harbor Labs", "Nordwind Trading LLC", 60)  # blocked by the list's data
        add("Quay Labs", "Baltic Relay Systems LLC", 60)  # 40 % listed-owned: not blocked
        add("Pier Labs", "VOLGA OPTIC WORKS, LLC", 51)  # two steps down, name as written
        add("Dock Labs", "Pearl River Components Ltd", 60)  # Entity List party owns it all
    found = _screen(engine, IN_FORCE)
    harbor = found["Harbor Labs"]
    assert (harbor["ownership_status"], harbor["ownership_rule"]) == (
        "restricted",
        "ofac-50-percent",
    )
    assert harbor["listed_owner_share"] == 60.0
    assert found["Quay Labs"]["ownership_status"] == "clear"
    assert found["Pier Labs"]["restricted_by_ownership"] is True
    # A Clearance org that is the unlisted company itself: owned as the list's data says.
    itself = found["Nordwind Trading LLC"]
    assert (itself["restricted_by_ownership"], itself["listed_owner_share"]) == (True, 60.0)
    assert itself["ownership_path"] == [  # type: ignore[comparison-overlap]
        {"owner": "Severnaya Orbital Holdings JSC", "kind": "entity", "percent": 60.0,
         "via": "sdn"}
    ]  # fmt: skip
    dock = found["Dock Labs"]
    assert (dock["restricted_by_ownership"], dock["ownership_rule"]) == (
        True,
        "bis-affiliates-rule",
    )
    # Same name, another country: not the list's company.
    assert found["Volga Optic Works"]["ownership_status"] == "clear"
    assert _screen(engine, SUSPENDED)["Dock Labs"]["ownership_status"] == "clear"
    # A new version of the list without the ownership: the org is clear again.
    path.write_bytes(_jsonl([r for r in LIST if r["id"] != "O1"]))
    load_lists(engine, [path], ListFormat.FTM, name="sdn")
    assert _screen(engine, IN_FORCE)["Harbor Labs"]["ownership_status"] == "clear"


def _screen(engine: Engine, day: date) -> dict[str, dict[str, object]]:
    with engine.begin() as conn:
        rescreen_ownership(conn, build_matcher(conn), day=day)
    with engine.connect() as conn:
        names = [r.name for r in conn.execute(sa.select(orgs.c.name))]
        return {n: views.org_json(directory.get_org(conn, n), 0) for n in names}
