"""`clearance lists hits` with organisations' hits beside people's, `clearance lists
resolve-org ORG LIST ENTRY_ID`, by name or id, and `clearance lists rescreen` (which gives an
organisation flagged before its hits were kept its hits), through the real Typer app; SQLite and
PostgreSQL."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from clearance.screening.tables import org_screening_hits
from tests.cli.test_catalog_cli import as_json, ok, refused

ORG = "Quantum Microsystems"
EL = "Entity List (EL) - Bureau of Industry and Security"
SDN = "Specially Designated Nationals (SDN) - Treasury Department"


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    runner = CliRunner()
    ok(runner, "init", str(tmp_path / "inst"))
    monkeypatch.setenv("CLEARANCE_CONFIG", str(tmp_path / "inst" / "clearance.toml"))
    monkeypatch.setenv("CLEARANCE_DATABASE_URL", db_url)
    lists = tmp_path / "csl.csv"
    with lists.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["_id", "source", "type", "name"])
        out.writerow(["csl-7", EL, "Entity", "Zhongshan Quantum Microsystems Company Limited"])
        out.writerow(["csl-42", SDN, "Individual", "Viktor Alekseyevich Morozkin"])
    ok(runner, "lists", "load", "--format", "csl", str(lists))
    ok(runner, "orgs", "add", ORG, "--country", "US")
    ok(runner, "users", "add", "viktor@demo.test", "--name", "Viktor A. Morozkin")
    return runner


def queue(cli: CliRunner) -> list[dict[str, object]]:
    return [json.loads(line) for line in ok(cli, "lists", "hits", "--json").splitlines()]


def test_hits_lists_organisations_and_resolve_org_decides_theirs(cli: CliRunner) -> None:
    org_id = as_json(cli, "orgs", "show", ORG)["id"]
    found = {r["entry_id"]: r for r in queue(cli)}
    assert set(found) == {"csl-7", "csl-42"}
    assert (found["csl-7"]["org_id"], found["csl-7"]["user_id"]) == (org_id, None)
    assert found["csl-7"]["outcome"] == "potential_match"
    assert found["csl-42"]["org_id"] is None and isinstance(found["csl-42"]["user_id"], int)
    text = ok(cli, "lists", "hits")
    assert f"org {org_id}  potential_match" in text and "user " in text

    cleared = ok(
        cli, "lists", "resolve-org", ORG, "csl", "csl-7", "--as", "false_positive",
        "--reason", "a US company in Austin",
    )  # fmt: skip
    assert f"{ORG} (org {org_id}): false_positive recorded" in cleared
    assert "screening status now clear" in cleared
    assert as_json(cli, "orgs", "show", ORG)["screening"] == "clear"
    lines = ok(cli, "audit", "query", "--type", "admin_action").splitlines()
    (entry,) = [
        e["entry"]
        for e in map(json.loads, filter(None, lines))
        if e["entry"]["action"] == "screening_resolve"
    ]
    assert entry["subject"] == f"org:{org_id}" and "Austin" not in json.dumps(entry)

    confirmed = ok(
        cli, "lists", "resolve-org", str(org_id), "csl", "csl-7", "--as", "true_match",
        "--reason", "the registry says it is the Zhongshan subsidiary",
    )  # fmt: skip
    assert "screening status now confirmed_match" in confirmed
    assert as_json(cli, "orgs", "show", ORG)["screening"] == "confirmed_match"
    # The person's hit is theirs alone: still pending, undecided.
    assert {r["entry_id"]: r["outcome"] for r in queue(cli)}["csl-42"] == "potential_match"


def test_resolve_org_refuses_without_a_reason_an_org_or_a_hit(cli: CliRunner) -> None:
    args = ("lists", "resolve-org", ORG, "csl", "csl-7", "--as", "false_positive")
    assert "needs a reason" in refused(cli, *args, "--reason", " ")
    assert "unknown organisation 'Nope Ltd'" in refused(
        cli, "lists", "resolve-org", "Nope Ltd", "csl", "csl-7", "--as", "true_match",
        "--reason", "x",
    )  # fmt: skip
    assert "unknown organisation 999" in refused(
        cli, "lists", "resolve-org", "999", "csl", "csl-7", "--as", "true_match", "--reason", "x"
    )
    assert "no current hit on csl entry csl-42" in refused(
        cli, "lists", "resolve-org", ORG, "csl", "csl-42", "--as", "true_match", "--reason", "x"
    )
    assert as_json(cli, "orgs", "show", ORG)["screening"] == "potential_match"


def test_rescreen_stores_the_hits_of_an_org_flagged_before_they_were_kept(
    cli: CliRunner, engine: Engine
) -> None:
    with engine.begin() as conn:  # as migration 0027 finds it: flagged, no hit stored
        conn.execute(sa.delete(org_screening_hits))
    args = ("lists", "resolve-org", ORG, "csl", "csl-7", "--as", "false_positive")
    assert "no current hit" in refused(cli, *args, "--reason", "a US company")
    assert [r["entry_id"] for r in queue(cli)] == ["csl-42"]

    assert "re-screened 2 users" in ok(cli, "lists", "rescreen")
    assert {r["entry_id"] for r in queue(cli)} == {"csl-7", "csl-42"}
    assert "screening status now clear" in ok(cli, *args, "--reason", "a US company")
