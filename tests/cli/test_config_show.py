"""`clearance config show`: every setting in effect, where it came from, secrets masked."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clearance.cli.app import app
from clearance.config import schema
from clearance.setup import write_instance

PASSWORD = "pw-never-shown"


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_instance(tmp_path / "inst", origin="test.clearance.local/audit")
    config = tmp_path / "inst" / "clearance.toml"
    with config.open("a", encoding="utf-8") as fh:
        fh.write(
            '\n[[identity.vendors]]\nname = "acme"\nsecret = "vendor-secret"\n'
            'secret_file = "acme.secret"\n'
        )
    monkeypatch.delenv("CLEARANCE_CONFIG", raising=False)
    monkeypatch.setenv("CLEARANCE_DATABASE_URL", f"postgresql://clearance:{PASSWORD}@db/c")
    monkeypatch.setenv("CLEARANCE_PORT", "9100")
    return config


def test_show_prints_toml_with_sources_and_no_secret(instance: Path) -> None:
    result = CliRunner().invoke(app, ["config", "show", "--config", str(instance)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert PASSWORD not in out and "vendor-secret" not in out
    assert "gateway.port = 9100  # env CLEARANCE_PORT\n" in out
    assert 'clearance.database_url = "postgresql://clearance:***@db/c"' in out
    assert f'gateway.host = "127.0.0.1"  # file {instance}\n' in out
    assert "audit.batch_max_entries = 512  # default\n" in out
    assert "# the port `clearance serve` listens on\ngateway.port" in out
    shown = tomllib.loads(out)  # the output is itself TOML, with dotted keys
    assert shown["gateway"]["port"] == 9100
    assert shown["policy"]["files"] == [str(instance.parent / "policy" / "default.cedar")]
    assert shown["identity"]["vendors"] == [
        {"name": "acme", "secret": "***", "secret_file": "acme.secret"}
    ]
    assert set(shown) == {k.table for k in schema()}


def test_show_json_gives_every_key_once(instance: Path) -> None:
    result = CliRunner().invoke(app, ["-c", str(instance), "config", "show", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["key"] for r in rows] == [k.dotted for k in schema()]
    by_key = {r["key"]: r for r in rows}
    assert by_key["gateway.port"] == {
        "key": "gateway.port",
        "value": 9100,
        "source": "env CLEARANCE_PORT",
        "doc": "the port `clearance serve` listens on",
    }
    assert by_key["clearance.database_url"]["source"] == "env CLEARANCE_DATABASE_URL"
    assert by_key["portal.smtp_password_file"]["value"] is None
    assert by_key["gateway.serve_uncontrolled_without_audit"]["value"] is False
    assert PASSWORD not in result.output


def test_show_refuses_a_bad_file_like_every_command(instance: Path) -> None:
    instance.write_text(instance.read_text().replace("port = 8080", "prot = 8080"))
    result = CliRunner().invoke(app, ["config", "show", "-c", str(instance)])
    assert result.exit_code != 0
    assert "[gateway] prot: unknown key (did you mean port?)" in str(result.exception)
