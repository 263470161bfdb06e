"""`clearance lists ...` and `clearance screen ...` through the real Typer app and a real
instance directory (SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clearance.cli.app import app
from clearance.errors import InvalidInput

LISTS = Path(__file__).resolve().parents[1] / "fixtures" / "lists"


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    runner = CliRunner()
    result = runner.invoke(app, ["init", str(tmp_path / "inst")])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("CLEARANCE_CONFIG", str(tmp_path / "inst" / "clearance.toml"))
    return runner


def test_load_list_screen_and_resolve(run: CliRunner, tmp_path: Path) -> None:
    added = run.invoke(app, ["users", "add", "kim@example.org", "--name", "Kim Jong Un"])
    assert added.exit_code == 0, added.output
    files = [str(LISTS / n) for n in ("sdn.csv", "alt.csv", "add.csv")]
    loaded = run.invoke(app, ["lists", "load", *files, "--format", "ofac-sdn"])
    assert loaded.exit_code == 0, loaded.output
    assert "18 entries" in loaded.output and "1 now confirmed_match" in loaded.output

    listed = run.invoke(app, ["lists", "list", "--json"])
    (version,) = [json.loads(line) for line in listed.output.splitlines()]
    assert version["name"] == "ofac-sdn" and version["current"] is True

    one = run.invoke(app, ["screen", "Putin Vladimir", "--json"])
    result = json.loads(one.output)
    assert result["status"] == "match"
    assert set(result) == {"query", "status", "matches"}
    assert result["matches"][0]["entry_id"] == "35096"

    queue = run.invoke(app, ["lists", "hits", "--json"])
    assert json.loads(queue.output.splitlines()[0])["entry_id"] == "20157"
    resolved = run.invoke(
        app,
        [
            *("lists", "resolve", "kim@example.org", "ofac-sdn", "20157"),
            *("--as", "false_positive", "--reason", "different birth date"),
        ],
    )
    assert resolved.exit_code == 0, resolved.output
    assert "screening status now clear" in resolved.output


def test_batch_file_keeps_input_order(run: CliRunner, tmp_path: Path) -> None:
    run.invoke(app, ["lists", "load", str(LISTS / "un.xml"), "--format", "un-xml"])
    batch = tmp_path / "q.csv"
    batch.write_text(
        "name,birth_date,nationality,type\n"
        "George Bush,,US,person\n"
        "صدام حسين التكريتي,1937-04-28,IQ,person\n"
        "Allied Democratic Forces,,,entity\n",
        encoding="utf-8",
    )
    out = run.invoke(app, ["screen", "--file", str(batch), "--json"])
    assert out.exit_code == 0, out.output
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert [r["status"] for r in lines] == ["clear", "match", "match"]
    assert lines[1]["matches"][0]["entry_id"] == "IQi.001"


def test_screen_needs_a_name_or_a_file(run: CliRunner) -> None:
    out = run.invoke(app, ["screen"])
    assert isinstance(out.exception, InvalidInput)
