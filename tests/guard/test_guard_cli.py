"""`clearance guard ...` against a real instance (SQLite and PostgreSQL): the queue, an opened
case with its excerpts, the decisions, a person's flags and the status, in --json and as text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from clearance.audit.service import AuditLog
from clearance.audit.tables import audit_entries
from clearance.cli.app import app
from clearance.config import GuardSettings, Settings
from clearance.errors import Conflict, InvalidInput, NotFound
from clearance.guard.strikes import Strikes
from clearance.identity.vault import EvidenceVault
from clearance.principals import service as principals
from clearance.store import connect
from tests.guard.test_review import check
from tests.identity.test_cli import add_user, make_instance

runner = CliRunner()
CASE_KEYS = {
    "case",
    "email",
    "subject",
    "status",
    "opened_at",
    "decided_at",
    "decided_by",
    "reason",
    "flag_count",
    "models",
    "categories",
    "max_score",
}
FLAG_KEYS = {
    "id",
    "created_at",
    "model",
    "stage",
    "categories",
    "score",
    "digest",
    "decision_index",
    "case",
    "cleared",
    "cleared_at",
}


def held(settings: Settings, email: str, count: int = 3) -> int | None:
    """`count` flags for `email` through the real Strikes (threshold 3); the case, if opened."""
    engine = connect(settings.database_url)
    log = AuditLog(engine, settings.audit)
    try:
        with engine.connect() as conn:
            subject = principals.get_user(conn, email).subject_id
        strikes = Strikes(
            engine, log, GuardSettings(strikes=3), EvidenceVault.open(settings.identity)
        )
        case = None
        for n in range(count):
            case = strikes.record(subject, "mythos-5", check(f"excerpt {n}"), None).case_id
        return case
    finally:
        log.close()
        engine.dispose()


def cli(config: Path, *args: str) -> object:
    result = runner.invoke(app, [*args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    return result


def actions(settings: Settings) -> list[dict[str, object]]:
    engine = connect(settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(audit_entries.c.entry).order_by(audit_entries.c.idx))
            return [json.loads(r.entry) for r in rows]
    finally:
        engine.dispose()


def run_json(config: Path, *args: str) -> object:
    result = runner.invoke(app, [*args, "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_queue_open_clear_confirm_release(db_url: str, tmp_path: Path) -> None:
    settings, config = make_instance(tmp_path / "i", db_url)
    add_user(settings, "anna@example.com", "Anna")
    add_user(settings, "bert@example.com", "Bert")
    anna = held(settings, "anna@example.com")
    bert = held(settings, "bert@example.com")
    assert anna is not None and bert is not None

    listed = run_json(config, "guard", "cases")
    assert isinstance(listed, list) and [c["case"] for c in listed] == [anna, bert]
    assert set(listed[0]) == CASE_KEYS
    assert listed[0]["status"] == "pending" and listed[0]["flag_count"] == 3
    assert listed[0]["categories"] == ["S14"] and listed[0]["max_score"] == 0.97
    assert run_json(config, "guard", "cases", "--status", "cleared") == []
    text = runner.invoke(app, ["guard", "cases", "--config", str(config)])
    assert text.exit_code == 0 and "anna@example.com" in text.output

    opened = run_json(config, "guard", "case", str(anna))
    assert isinstance(opened, dict) and set(opened) == CASE_KEYS | {"flags"}
    assert [f["excerpt"] for f in opened["flags"]] == ["excerpt 0", "excerpt 1", "excerpt 2"]
    assert set(opened["flags"][0]) == FLAG_KEYS | {"excerpt", "excerpt_erased"}
    (view,) = [e for e in actions(settings) if e.get("action") == "usage.review.view"]
    assert str(view["actor"]).startswith("cli:") and view["target"] == f"guard_case:{anna}"

    missing = runner.invoke(app, ["guard", "clear", str(anna), "--config", str(config)])
    assert missing.exit_code != 0  # --reason is required
    done = cli(config, "guard", "clear", str(anna), "--reason", "pen-tester, contract 12")
    assert "cleared" in done.output  # type: ignore[attr-defined]
    again = runner.invoke(app, ["guard", "confirm", str(anna), "--reason", "x", "-c", str(config)])
    assert isinstance(again.exception, Conflict) and "not pending" in again.exception.detail
    cli(config, "guard", "confirm", str(bert), "--reason", "exploit development")
    statuses = {c["case"]: c["status"] for c in run_json(config, "guard", "cases")}  # type: ignore[attr-defined]
    assert statuses == {anna: "cleared", bert: "confirmed"}

    flags = run_json(config, "guard", "flags", "anna@example.com")
    assert isinstance(flags, dict)
    assert (flags["email"], flags["usage_hold"]) == ("anna@example.com", None)
    assert len(flags["flags"]) == 3 and all(f["cleared"] for f in flags["flags"])
    assert set(flags["flags"][0]) == FLAG_KEYS  # no excerpt
    bert_flags = run_json(config, "guard", "flags", "bert@example.com")
    assert bert_flags["usage_hold"] == "confirmed"  # type: ignore[index]

    cli(config, "guard", "release", "bert@example.com", "--reason", "appeal upheld")
    assert run_json(config, "guard", "flags", "bert@example.com")["usage_hold"] is None  # type: ignore[index]
    recorded = [
        e["action"] for e in actions(settings) if str(e.get("action", "")).startswith("usage.")
    ]
    assert recorded == [
        "usage.hold",
        "usage.hold",
        "usage.review.view",
        "usage.review.clear",
        "usage.review.confirm",
        "usage.hold.release",
    ]
    text_case = runner.invoke(app, ["guard", "case", str(bert), "-c", str(config)])
    assert "excerpt 2" in text_case.output and "confirmed" in text_case.output


def test_status(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, config = make_instance(tmp_path / "i", db_url)
    text = config.read_text() + '\n[guard]\nkind = "moderation"\napi_key_env = "GUARD_KEY"\n'
    config.write_text(text)
    monkeypatch.setenv("GUARD_KEY", "sk-secret-value")
    add_user(settings, "anna@example.com", "Anna")
    held(settings, "anna@example.com", count=4)
    out = run_json(config, "guard", "status")
    assert isinstance(out, dict)
    assert (out["enabled"], out["pending_cases"], out["flags_24h"]) == (True, 1, 4)
    assert out["settings"]["kind"] == "moderation" and out["settings"]["strikes"] == 3
    assert out["settings"]["api_key_env"] == "GUARD_KEY" and out["settings"]["api_key_set"]
    assert "sk-secret-value" not in json.dumps(out)
    plain = runner.invoke(app, ["guard", "status", "-c", str(config)])
    assert "pending cases: 1" in plain.output and "sk-secret-value" not in plain.output


def test_unknown_case_and_bad_status_are_clean_errors(db_url: str, tmp_path: Path) -> None:
    _settings, config = make_instance(tmp_path / "i", db_url)
    unknown = runner.invoke(app, ["guard", "case", "999", "-c", str(config)])
    assert isinstance(unknown.exception, NotFound)
    bad = runner.invoke(app, ["guard", "cases", "--status", "maybe", "-c", str(config)])
    assert isinstance(bad.exception, InvalidInput)
