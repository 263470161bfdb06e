"""`clearance orgs owners add|list|remove` and `orgs show --json`: declared owners screened at
once, each change an audit entry; SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from .test_catalog_cli import as_json, audit_entry, ok, refused

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
        out.writerow(["1", SDN, "Individual", "Viktor Alekseyevich Morozkin"])
        out.writerow(["2", SDN, "Individual", "Farhad Jalali Dastgerdi"])
    ok(runner, "lists", "load", "--format", "csl", str(lists))
    ok(runner, "orgs", "add", "Alpha Labs", "--country", "US")
    return runner


def test_owners_are_declared_screened_and_audited(cli: CliRunner) -> None:
    first = as_json(
        cli, "orgs", "owners", "add", "Alpha Labs", "--person", "Viktor Alekseyevich Morozkin",
        "--percent", "30",
    )  # fmt: skip
    assert (first["ownership_status"], first["listed_owner_share"]) == ("review", 30.0)
    entry = audit_entry(cli, first["audit_index"])
    assert (entry["action"], entry["details"]["percent"]) == ("org.owner.add", 30.0)  # type: ignore[index]
    second = as_json(
        cli, "orgs", "owners", "add", "Alpha Labs", "--person", "Farhad Jalali Dastgerdi",
        "--percent", "25", "--country", "IR",
    )  # fmt: skip
    assert second["screening_status"] == "restricted_by_ownership"
    shown = as_json(cli, "orgs", "show", "Alpha Labs")
    assert (shown["restricted_by_ownership"], shown["listed_owner_share"]) == (True, 55.0)
    assert shown["ownership_rule"] == "ofac-50-percent" and len(shown["ownership_path"]) == 2
    listed = json.loads(ok(cli, "orgs", "owners", "list", "Alpha Labs", "--json"))
    assert [o["percent"] for o in listed["owners"]] == [30.0, 25.0]
    assert all(o["declared_by"] for o in listed["owners"])
    ok(cli, "orgs", "owners", "remove", "Alpha Labs", str(second["id"]), "--reason", "sold")
    assert as_json(cli, "orgs", "show", "Alpha Labs")["ownership_status"] == "review"
    assert "exactly one" in refused(cli, "orgs", "owners", "add", "Alpha Labs", "--percent", "5")
    assert "at most 100" in refused(
        cli, "orgs", "owners", "add", "Alpha Labs", "--entity", "X Ltd", "--percent", "80"
    )


def test_deciding_as_of_a_day_uses_the_rules_in_force_then(cli: CliRunner, tmp_path: Path) -> None:
    """An auditor's "was this right then?": on a day inside the Affiliates Rule's suspension the
    member of an Entity-List-owned company was served; on a day it is in force, refused."""
    listed = tmp_path / "el.csv"
    with listed.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["_id", "source", "type", "name"])
        out.writerow(["9", "Entity List (EL) - Bureau of Industry and Security", "Entity",
                      "Zhongshan Quantum Microsystems Company Limited"])  # fmt: skip
    ok(cli, "lists", "load", "--format", "csl", "--name", "el", str(listed))
    ok(cli, "orgs", "add", "Delta Labs", "--country", "US")
    ok(cli, "orgs", "owners", "add", "Delta Labs", "--entity",
       "Zhongshan Quantum Microsystems Company Limited", "--percent", "60")  # fmt: skip
    ok(cli, "upstreams", "add", "demo", "--kind", "openai", "--base-url", "http://h.test/v1")
    ok(cli, "models", "add", "fable-4", "--upstream", "demo", "--training-compute", "2e25")
    ok(cli, "users", "add", "eng@delta.test", "--org", "Delta Labs")
    ok(cli, "identity", "attest", "eng@delta.test", "--nationality", "US", "--us-person",
       "citizen", "--method", "in_person")  # fmt: skip

    def check(day: str) -> dict[str, object]:
        return as_json(cli, "policy", "check", "eng@delta.test", "fable-4", "--at", day)

    assert check("2026-03-01")["effect"] == "allow"  # suspended then
    refused_then = check("2026-12-07")
    assert refused_then["effect"] == "deny"
    assert refused_then["reasons"][0]["rule"] == "restricted-by-ownership"  # type: ignore[index]
    rules = as_json(cli, "policy", "rules", "--at", "2026-03-01")
    bis = next(r for r in rules["ownership"] if r["id"] == "bis-affiliates-rule")  # type: ignore[union-attr]
    assert bis["in_force"] is False and "90 FR 47201" in bis["citation"]
    assert any(r["id"] == "restricted-by-ownership" for r in rules["policy"])  # type: ignore[union-attr]
    assert "YYYY-MM-DD" in refused(cli, "policy", "rules", "--at", "yesterday")


def test_owners_are_imported_from_a_file_screened_and_audited(
    cli: CliRunner, tmp_path: Path
) -> None:
    def line(record: dict[str, object]) -> str:
        return json.dumps(record) + "\n"

    def entity(id_: str, schema: str, name: str) -> str:
        return line({"id": id_, "schema": schema, "properties": {"name": [name]}})

    def owns(id_: str, owner: str, percent: str) -> str:
        props = {"owner": [owner], "asset": ["a"], "percentage": [percent]}
        return line({"id": id_, "schema": "Ownership", "properties": props})

    good = tmp_path / "alpha.ftm.jsonl"
    good.write_text(
        entity("a", "Company", "Alpha Labs") + entity("v", "Person", "Viktor Alekseyevich Morozkin")
        + entity("f", "Person", "Farhad Jalali Dastgerdi") + owns("o1", "v", "30")
        + owns("o2", "f", "25")
    )  # fmt: skip
    done = as_json(cli, "orgs", "owners", "import", "Alpha Labs", str(good), "--format", "ftm")
    assert (done["owners"], done["screening_status"]) == (2, "restricted_by_ownership")
    entry = audit_entry(cli, done["audit_index"])
    assert entry["action"] == "org.owner.import"
    assert entry["details"]["sha256"] == done["sha256"]  # type: ignore[index]
    listed = json.loads(ok(cli, "orgs", "owners", "list", "Alpha Labs", "--json"))
    assert {o["source"]["file"] for o in listed["owners"]} == {"alpha.ftm.jsonl"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text() + owns("o3", "ghost", "5"))
    assert "line 6: owner 'ghost' is not described" in refused(
        cli, "orgs", "owners", "import", "Alpha Labs", str(bad), "--format", "ftm"
    )
    assert "--format" in refused(
        cli, "orgs", "owners", "import", "Alpha Labs", str(good), "--format", "csv"
    )
    again = json.loads(ok(cli, "orgs", "owners", "list", "Alpha Labs", "--json"))
    assert again == listed  # nothing half-loaded, nothing replaced
