"""Issue 2's "done when": the README's commands create the directive's people and
`clearance policy check --json` gives their decisions, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clearance.cli.app import app

TODAY = date.today()


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    runner = CliRunner()
    result = runner.invoke(app, ["init", str(tmp_path / "inst")])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("CLEARANCE_CONFIG", str(tmp_path / "inst" / "clearance.toml"))
    monkeypatch.setenv("CLEARANCE_DATABASE_URL", db_url)
    return runner


def ok(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == 0, f"{args}: {result.output}"
    return result.output


def check(cli: CliRunner, email: str, model: str, *extra: str) -> dict[str, object]:
    out = ok(cli, "policy", "check", email, model, "--json", *extra)
    decision: dict[str, object] = json.loads(out)
    return decision


def test_directive_personas_through_the_cli(cli: CliRunner) -> None:
    ok(cli, "upstreams", "add", "demo", "--kind", "openai", "--base-url", "http://127.0.0.1:9/v1")
    ok(cli, "models", "add", "fable-4", "--upstream", "demo", "--training-compute", "2e25")
    ok(
        cli,
        "models",
        "add",
        "fable-5",
        "--upstream",
        "demo",
        "--params",
        "1.2e12",
        "--tokens",
        "3e13",
        "--fallback",
        "fable-4",
    )
    ok(
        cli,
        "models",
        "add",
        "mythos-5",
        "--upstream",
        "demo",
        "--classification",
        "controlled",
        "--rationale",
        "capability evaluation",
        "--fallback",
        "fable-5",
    )
    listed = json.loads(ok(cli, "models", "list", "--json"))
    assert {m["id"]: m["classification"] for m in listed} == {
        "fable-4": "uncontrolled",
        "fable-5": "controlled",
        "mythos-5": "controlled",
    }
    assert "6·N·D" in next(m["rationale"] for m in listed if m["id"] == "fable-5")
    ok(cli, "orgs", "add", "Acme", "--country", "US")
    ok(
        cli,
        "licences",
        "add",
        "--org",
        "Acme",
        "--model",
        "fable-5",
        "--nationality",
        "SE",
        "--number",
        "D123",
        "--expires",
        (TODAY + timedelta(days=30)).isoformat(),
    )
    people = {
        "us": ["--nationality", "US", "--us-person", "citizen"],
        "usse": ["--nationality", "US", "--nationality", "SE", "--us-person", "citizen"],
        "secn": ["--nationality", "SE", "--nationality", "CN", "--us-person", "none"],
        "lpr": ["--nationality", "IN", "--us-person", "lpr"],
        "prot": ["--nationality", "AF", "--us-person", "protected"],
        "eng": ["--nationality", "SE", "--us-person", "none"],
        "old": [
            "--nationality",
            "US",
            "--us-person",
            "citizen",
            "--expires",
            (TODAY - timedelta(days=2)).isoformat(),
        ],
    }
    for who, facts in people.items():
        org = ["--org", "Acme"] if who in ("eng", "secn") else []
        ok(cli, "users", "add", f"{who}@x.test", *org)
        ok(cli, "identity", "attest", f"{who}@x.test", *facts, "--method", "document")
    ok(cli, "users", "add", "new@x.test")
    key_out = ok(cli, "keys", "create", "us@x.test")
    assert key_out.strip().splitlines()[-1].startswith("sk-clr-")

    expect = {
        ("us", "mythos-5"): ("allow", "mythos-5"),
        ("usse", "mythos-5"): ("allow", "mythos-5"),
        ("lpr", "mythos-5"): ("allow", "mythos-5"),
        ("prot", "mythos-5"): ("allow", "mythos-5"),
        ("eng", "fable-5"): ("allow", "fable-5"),
        ("eng", "mythos-5"): ("fallback", "fable-5"),
        ("secn", "fable-5"): ("fallback", "fable-4"),
        ("old", "fable-5"): ("fallback", "fable-4"),
        ("new", "mythos-5"): ("fallback", "fable-4"),
    }
    for (who, model), (effect, served) in expect.items():
        d = check(cli, f"{who}@x.test", model)
        assert (d["effect"], d["model_served"]) == (effect, served), (who, model, d)
        assert str(d["policy_hash"]).startswith("sha256:")

    denied = check(cli, "secn@x.test", "fable-5", "--no-fallback")
    assert denied["effect"] == "deny" and denied["model_served"] is None
    assert denied["reasons"] == [
        {
            "rule": "controlled-licence-not-covering",
            "reason": denied["reasons"][0]["reason"],  # type: ignore[index]
            "legal_basis": denied["reasons"][0]["legal_basis"],  # type: ignore[index]
        }
    ]
    embargo = check(cli, "us@x.test", "fable-4", "--ip", "5.160.0.1")  # an Iranian address
    assert embargo["effect"] == "deny"
    assert [r["rule"] for r in embargo["reasons"]] == ["embargoed-location"]  # type: ignore[attr-defined]

    ok(cli, "models", "suspend", "fable-4", "--reason", "incident")
    assert check(cli, "new@x.test", "mythos-5")["effect"] == "deny"
    ok(cli, "models", "resume", "fable-4")

    refused = cli.invoke(
        app,
        [
            "models",
            "add",
            "x",
            "--upstream",
            "demo",
            "--training-compute",
            "1e20",
            "--fallback",
            "nope",
        ],
    )
    assert refused.exit_code != 0
    unknown = cli.invoke(app, ["policy", "check", "nobody@x.test", "fable-4", "--json"])
    assert unknown.exit_code != 0
    bad_country = cli.invoke(
        app,
        [
            "identity",
            "attest",
            "us@x.test",
            "--nationality",
            "XX",
            "--us-person",
            "none",
            "--method",
            "document",
        ],
    )
    assert bad_country.exit_code != 0


def test_policy_validate(cli: CliRunner, tmp_path: Path) -> None:
    assert "ok" in ok(cli, "policy", "validate")
    bad = tmp_path / "bad.cedar"
    bad.write_text('@id("x") forbid (principal, action, resource) when { resource.nope };')
    result = cli.invoke(app, ["policy", "validate", str(bad)])
    assert result.exit_code == 1
