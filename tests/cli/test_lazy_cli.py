"""The root command lists everything without importing it; `--config` goes before the command."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from clearance.cli import app as root
from clearance.cli.app import COMMANDS, app

HEAVY = ("sqlalchemy", "numpy", "cv2", "onnxruntime", "dlib", "cedarpy", "uvicorn", "httpx")


def test_help_imports_no_command_and_no_heavy_library() -> None:
    probe = (
        "import sys\n"
        "from clearance.cli.app import main\n"
        "sys.argv = ['clearance', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in " + repr(HEAVY) + "\n"
        "                or m.startswith('clearance.cli.') and m != 'clearance.cli.app')\n"
        "print('LOADED', loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert "Commands" in out and "identity" in out and "serve" in out
    assert out.strip().splitlines()[-1] == "LOADED []"


def test_the_table_lists_every_registered_command_with_its_own_help() -> None:
    # Register every group module into a fresh app, as the eager CLI did, and compare.
    full = typer.Typer()
    modules = dict.fromkeys(m for e in COMMANDS.values() for m in e.modules)
    for module in modules:
        importlib.import_module(f"clearance.cli.{module}").register(full)
    group = typer.main.get_group(full)
    assert set(group.commands) == set(COMMANDS)
    for name, command in group.commands.items():
        assert (command.help or "").strip().splitlines()[0] == COMMANDS[name].help, name
        assert root.load_command(name).help == command.help


def test_a_mistyped_command_suggests_the_right_one() -> None:
    result = CliRunner().invoke(app, ["modls", "list"])
    assert result.exit_code == 2
    assert "Did you mean 'models'?" in result.output


@pytest.fixture
def instance(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    result = CliRunner().invoke(app, ["init", str(tmp_path / "inst")])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("CLEARANCE_DATABASE_URL", db_url)
    return tmp_path / "inst" / "clearance.toml"


def _models(*args: str) -> list[str]:
    result = CliRunner().invoke(app, [*args])
    assert result.exit_code == 0, result.output
    return [m["id"] for m in json.loads(result.output)]


def test_config_before_the_command_beats_the_environment(
    instance: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEARANCE_CONFIG", str(tmp_path / "missing.toml"))
    runner = CliRunner()
    add = ["models", "add", "small", "--upstream-model", "m", "--training-compute", "1e20"]
    upstream = ["upstreams", "add", "u", "--kind", "openai", "--base-url", "http://127.0.0.1:9"]
    for args in (upstream, [*add, "--upstream", "u"]):
        result = runner.invoke(app, ["--config", str(instance), *args])
        assert result.exit_code == 0, result.output
    assert _models("-c", str(instance), "models", "list", "--json") == ["small"]
    # The command's own option wins over the global one.
    assert _models(
        "-c", str(tmp_path / "nope.toml"), "models", "list", "--json", "-c", str(instance)
    ) == ["small"]
    # Without either, the environment's (missing) file is used, and named.
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code != 0
    assert "missing.toml" in str(result.exception or "") + result.output
