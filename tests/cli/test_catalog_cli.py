"""`clearance upstreams ...` and `clearance models ...`: list, update, remove, reclassify and
retire, each change an audit entry, `--json` everywhere; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clearance.cli.app import app
from clearance.errors import ClearanceError


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    runner = CliRunner()
    result = runner.invoke(app, ["init", str(tmp_path / "inst")])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("CLEARANCE_CONFIG", str(tmp_path / "inst" / "clearance.toml"))
    monkeypatch.setenv("CLEARANCE_DATABASE_URL", db_url)
    ok(
        runner,
        "upstreams",
        "add",
        "demo",
        "--kind",
        "openai",
        "--base-url",
        "http://127.0.0.1:9/v1",
    )
    ok(runner, "upstreams", "add", "spare", "--kind", "anthropic", "--base-url", "http://h.test")
    ok(runner, "models", "add", "fable-4", "--upstream", "demo", "--training-compute", "2e25")
    ok(
        runner,
        "models",
        "add",
        "fable-5",
        "--upstream",
        "demo",
        "--training-compute",
        "4e26",
        "--fallback",
        "fable-4",
    )
    ok(runner, "models", "add", "mythos-5", "--upstream", "demo", "--training-compute", "5e26")
    return runner


def ok(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == 0, f"{args}: {result.output}"
    return result.output


def refused(cli: CliRunner, *args: str) -> str:
    """What the user is told: a ClearanceError's detail (`main` prints it), or typer's usage."""
    result = cli.invoke(app, list(args))
    assert result.exit_code != 0, f"{args} should have been refused: {result.output}"
    if isinstance(result.exception, ClearanceError):
        return result.exception.detail
    assert result.exit_code == 2, result.exception  # a usage error, never a crash
    return result.output + result.stderr


def as_json(cli: CliRunner, *args: str) -> dict[str, object]:
    value = json.loads(ok(cli, *args, "--json"))
    assert isinstance(value, dict)
    return value


def models(cli: CliRunner) -> dict[str, dict[str, object]]:
    return {m["id"]: m for m in json.loads(ok(cli, "models", "list", "--json"))}


def audit_entry(cli: CliRunner, index: object) -> dict[str, object]:
    lines = ok(cli, "audit", "query", "--type", "admin_action").splitlines()
    found = [json.loads(line) for line in lines if line.strip()]
    entries = {e["index"]: e["entry"] for e in found}
    entry = entries[index]
    assert isinstance(entry, dict)
    return entry


def test_upstreams_list_update_and_remove_only_when_unused(cli: CliRunner) -> None:
    listed = json.loads(ok(cli, "upstreams", "list", "--json"))
    assert {u["name"]: u["kind"] for u in listed} == {"demo": "openai", "spare": "anthropic"}

    updated = as_json(
        cli, "upstreams", "update", "demo", "--base-url", "http://127.0.0.1:8/v1/", "--api-key-env",
        "DEMO_KEY",
    )  # fmt: skip
    assert updated["base_url"] == "http://127.0.0.1:8/v1"
    assert updated["api_key_env"] == "DEMO_KEY"
    entry = audit_entry(cli, updated["audit_index"])
    assert (entry["action"], entry["target"]) == ("upstream.update", "demo")
    assert entry["details"] == {
        "changes": {
            "base_url": {"from": "http://127.0.0.1:9/v1", "to": "http://127.0.0.1:8/v1"},
            "api_key_env": {"from": None, "to": "DEMO_KEY"},
        }
    }
    cleared = as_json(cli, "upstreams", "update", "demo", "--clear-api-key-env")
    assert cleared["api_key_env"] is None
    assert "nothing to change" in refused(cli, "upstreams", "update", "demo")
    assert "invalid base URL" in refused(
        cli, "upstreams", "update", "demo", "--base-url", "ftp://x"
    )

    # In use: refused, naming every model that uses it; nothing changed.
    out = refused(cli, "upstreams", "remove", "demo")
    assert "fable-4, fable-5, mythos-5" in out
    assert "demo" in {u["name"] for u in json.loads(ok(cli, "upstreams", "list", "--json"))}

    removed = as_json(cli, "upstreams", "remove", "spare")
    assert removed["removed"] is True
    assert audit_entry(cli, removed["audit_index"])["action"] == "upstream.remove"
    assert [u["name"] for u in json.loads(ok(cli, "upstreams", "list", "--json"))] == ["demo"]
    assert "unknown upstream" in refused(cli, "upstreams", "remove", "spare")


def test_models_update_keeps_fallback_chains_acyclic_and_existing(cli: CliRunner) -> None:
    updated = as_json(cli, "models", "update", "mythos-5", "--fallback", "fable-5")
    assert updated["fallbacks"] == ["fable-5"]
    entry = audit_entry(cli, updated["audit_index"])
    assert (entry["action"], entry["target"]) == ("model.update", "mythos-5")
    assert entry["details"] == {"changes": {"fallbacks": {"from": [], "to": ["fable-5"]}}}

    # fable-4 -> mythos-5 -> fable-5 -> fable-4 would loop: refused, naming the cycle.
    out = refused(cli, "models", "update", "fable-4", "--fallback", "mythos-5")
    assert "fallback cycle refused: fable-4 -> mythos-5 -> fable-5 -> fable-4" in out
    assert "does not exist" in refused(cli, "models", "update", "fable-4", "--fallback", "nope")
    assert "itself" in refused(cli, "models", "update", "fable-4", "--fallback", "fable-4")
    assert models(cli)["fable-4"]["fallbacks"] == []

    ok(cli, "upstreams", "add", "other", "--kind", "openai", "--base-url", "http://o.test/v1")
    moved = as_json(
        cli, "models", "update", "fable-5", "--upstream", "other", "--upstream-model", "f5-2025",
        "--no-fallbacks",
    )  # fmt: skip
    assert (moved["upstream"], moved["upstream_model"], moved["fallbacks"]) == (
        "other",
        "f5-2025",
        [],
    )
    assert "unknown upstream" in refused(cli, "models", "update", "fable-5", "--upstream", "x")
    assert "nothing to change" in refused(cli, "models", "update", "fable-5")


def test_reclassify_records_an_explicit_decision_with_rationale_and_evidence(
    cli: CliRunner,
) -> None:
    before = models(cli)["fable-4"]
    assert (before["classification"], before["classification_source"]) == (
        "uncontrolled",
        "training_compute",
    )
    result = as_json(
        cli, "models", "reclassify", "fable-4", "--classification", "controlled", "--rationale",
        "CBRN uplift evaluation above threshold", "--evidence", "https://evals.test/fable-4",
    )  # fmt: skip
    after = models(cli)["fable-4"]
    assert after == {k: v for k, v in result.items() if k != "audit_index"}
    assert after["classification"] == "controlled" and after["controlled"] is True
    assert after["classification_source"] == "explicit"
    assert after["rationale"] == "CBRN uplift evaluation above threshold"
    assert after["evidence"] == "https://evals.test/fable-4"
    assert after["training_compute"] == 2e25  # kept for the record; the decision wins
    entry = audit_entry(cli, result["audit_index"])
    assert (entry["action"], entry["target"]) == ("model.reclassify", "fable-4")
    details = entry["details"]
    assert isinstance(details, dict)
    assert details["rationale"] == "CBRN uplift evaluation above threshold"
    assert details["evidence"] == "https://evals.test/fable-4"
    assert details["changes"]["classification"] == {"from": "uncontrolled", "to": "controlled"}
    assert str(entry["actor"]).startswith("cli:")

    out = refused(cli, "models", "reclassify", "fable-4", "--classification", "controlled")
    assert "--rationale" in out
    reason = ["--rationale", " "]
    assert "rationale" in refused(
        cli, "models", "reclassify", "fable-4", "--classification", "controlled", *reason
    )


def test_retire_is_for_good_and_unlinks_fallbacks(cli: CliRunner) -> None:
    result = as_json(cli, "models", "retire", "fable-4", "--reason", "end of life")
    assert result["status"] == "retired" and result["retired_reason"] == "end of life"
    assert result["unlinked_from"] == ["fable-5"]
    listed = models(cli)
    assert listed["fable-4"]["status"] == "retired"
    assert listed["fable-5"]["fallbacks"] == []
    entry = audit_entry(cli, result["audit_index"])
    assert (entry["action"], entry["target"]) == ("model.retire", "fable-4")
    assert entry["details"] == {"reason": "end of life", "unlinked_from": ["fable-5"]}

    assert "retired" in refused(cli, "models", "update", "fable-5", "--fallback", "fable-4")
    assert "retired" in refused(cli, "models", "retire", "fable-4", "--reason", "again")
    again = ["--classification", "uncontrolled", "--rationale", "x"]
    assert "retired" in refused(cli, "models", "reclassify", "fable-4", *again)
    assert "retired" in ok(cli, "models", "list")
