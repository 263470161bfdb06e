"""`clearance models evidence` and `clearance models thresholds`: classification from evidence
(explicit > evaluation >= its threshold > training compute > threshold), the rule in the JSON, a
preview of a threshold change that applies nothing; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from clearance.cli.app import app
from clearance.store import versions

from .test_catalog_cli import audit_entry, models, ok, refused


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    runner = CliRunner()
    assert runner.invoke(app, ["init", str(tmp_path / "inst")]).exit_code == 0
    toml = tmp_path / "inst" / "clearance.toml"
    with toml.open("a") as f:
        f.write('\n[[policy.eval_thresholds]]\nname = "cyber-uplift"\nscore = 0.5\n')
    monkeypatch.setenv("CLEARANCE_CONFIG", str(toml))
    monkeypatch.setenv("CLEARANCE_DATABASE_URL", db_url)
    ok(runner, "upstreams", "add", "demo", "--kind", "openai", "--base-url", "http://h.test/v1")
    ok(runner, "models", "add", "small", "--upstream", "demo", "--training-compute", "2e25")
    ok(runner, "models", "add", "big", "--upstream", "demo", "--training-compute", "4e26")
    ok(runner, "models", "add", "mid", "--upstream", "demo", "--training-compute", "5e25")
    return runner


def evidence(cli: CliRunner, *args: str) -> dict[str, object]:
    value = json.loads(ok(cli, "models", "evidence", *args, "--json"))
    assert isinstance(value, dict)
    return value


def test_each_rule_and_its_precedence(cli: CliRunner) -> None:
    listed = models(cli)
    assert listed["big"]["classification_rule"] == "training-compute>1e26"
    assert listed["small"]["classification_rule"] == "below-thresholds"
    assert listed["small"]["classification"] == "uncontrolled"

    # An evaluation at its threshold controls, and wins over compute within the threshold.
    out = evidence(cli, "small", "--eval", "cyber-uplift=0.5", "--source", "https://evals.test/r/1")
    assert (out["classification"], out["classification_rule"]) == (
        "controlled",
        "evaluation:cyber-uplift>=0.5",
    )
    assert out["classification_source"] == "evaluation"
    assert out["evaluations"] == [
        {
            "name": "cyber-uplift",
            "score": 0.5,
            "source": "https://evals.test/r/1",
            "recorded_at": out["evaluations"][0]["recorded_at"],  # type: ignore[index]
        }
    ]
    # Evaluation wins over compute: big scores too, and is controlled by the evaluation.
    assert evidence(cli, "big", "--eval", "cyber-uplift=0.9")["classification_rule"] == (
        "evaluation:cyber-uplift>=0.5"
    )
    # A score below its threshold, or one no threshold names, controls nothing.
    out = evidence(cli, "mid", "--eval", "cyber-uplift=0.49", "--eval", "bio=99")
    assert (out["classification"], out["classification_rule"]) == (
        "uncontrolled",
        "below-thresholds",
    )
    # 6·N·D: 1e12 parameters x 2e13 tokens x 6 = 1.2e26 > 1e26.
    out = evidence(cli, "mid", "--parameters", "1e12", "--tokens", "2e13")
    assert out["training_compute"] == pytest.approx(1.2e26)
    assert (out["parameters"], out["tokens"]) == (1e12, 2e13)
    assert out["classification_rule"] == "training-compute>1e26"
    assert "6·N·D" in str(out["rationale"])
    # The explicit decision wins over everything.
    ok(cli, "models", "reclassify", "small", "--classification", "uncontrolled", "--rationale", "r")
    assert models(cli)["small"]["classification_rule"] == "explicit"
    assert models(cli)["small"]["classification"] == "uncontrolled"
    # A later reported figure replaces the estimate (and its N and D).
    out = evidence(cli, "mid", "--training-compute", "3e25")
    assert (out["classification_rule"], out["parameters"]) == ("below-thresholds", None)


def catalog_version(db_url: str) -> int:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return versions.read_all(conn)[versions.Kind.CATALOG.value]
    finally:
        engine.dispose()


def test_evidence_is_an_audit_entry_and_bumps_the_catalog(cli: CliRunner, db_url: str) -> None:
    version = catalog_version(db_url)
    out = evidence(cli, "small", "--eval", "cyber-uplift=0.7")
    entry = audit_entry(cli, out["audit_index"])
    assert entry["action"] == "model.evidence"
    details = entry["details"]
    assert isinstance(details, dict)
    assert details["evaluations"] == [{"name": "cyber-uplift", "score": 0.7}]
    assert details["changes"]["classification"] == {"from": "uncontrolled", "to": "controlled"}
    assert catalog_version(db_url) > version


def test_preview_lists_exactly_the_models_that_would_flip(cli: CliRunner) -> None:
    evidence(cli, "small", "--eval", "cyber-uplift=0.3")
    evidence(cli, "mid", "--eval", "cyber-uplift=0.45")
    before = models(cli)
    out = json.loads(
        ok(cli, "models", "thresholds", "--compute", "3e26", "--eval", "cyber-uplift=0.4", "--json")
    )
    assert out["applied"] is False and "configuration" in out["note"]
    assert out["current"] == {"compute": 1e26, "evaluations": {"cyber-uplift": 0.5}}
    assert out["proposed"] == {"compute": 3e26, "evaluations": {"cyber-uplift": 0.4}}
    # mid (0.45 >= 0.4) becomes controlled; big stays controlled (4e26 > 3e26); small 0.3 stays.
    assert out["changes"] == [
        {
            "model": "mid",
            "from": "uncontrolled",
            "to": "controlled",
            "from_rule": "below-thresholds",
            "to_rule": "evaluation:cyber-uplift>=0.4",
            "why": "evaluation cyber-uplift scored 0.45, at or above the threshold 0.4",
        }
    ]
    flips = json.loads(ok(cli, "models", "thresholds", "--compute", "5e26", "--json"))
    assert [(c["model"], c["to"]) for c in flips["changes"]] == [("big", "uncontrolled")]
    dropped = json.loads(ok(cli, "models", "thresholds", "--drop-eval", "cyber-uplift", "--json"))
    assert dropped["changes"] == []
    assert models(cli) == before  # nothing applied
    assert "no model would change" in ok(cli, "models", "thresholds", "--compute", "2e26")


def test_bad_evidence_is_refused_clearly(cli: CliRunner) -> None:
    assert "unknown model 'nope'" in refused(cli, "models", "evidence", "nope", "--eval", "a=1")
    assert "must be a number" in refused(cli, "models", "evidence", "small", "--eval", "a=high")
    assert "finite" in refused(cli, "models", "evidence", "small", "--eval", "a=nan")
    assert "NAME=NUMBER" in refused(cli, "models", "evidence", "small", "--eval", "a")
    assert "invalid evaluation name" in refused(
        cli, "models", "evidence", "small", "--eval", "Bad Name=1"
    )
    assert "must be positive" in refused(
        cli, "models", "evidence", "small", "--training-compute", "-5"
    )
    assert "positive" in refused(
        cli, "models", "evidence", "small", "--parameters", "0", "--tokens", "1e12"
    )
    assert "go together" in refused(cli, "models", "evidence", "small", "--parameters", "1e9")
    assert "no evidence" in refused(cli, "models", "evidence", "small")
    assert "must be positive" in refused(cli, "models", "thresholds", "--compute", "0")
    assert "no such threshold" in refused(cli, "models", "thresholds", "--drop-eval", "bio")
    assert models(cli)["small"]["evaluations"] == []
