"""The root `clearance` command. Groups load when named; errors become one clean line.

`clearance --help` lists every command from the table below without importing any of them (the
identity stack alone, onnxruntime, OpenCV and dlib, takes seconds to import); a command's modules
are imported only when it runs. `--config FILE` goes before or after the command.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click import Command, Context
from typer.core import TyperCommand, TyperGroup

from clearance.errors import ClearanceError

CONFIG_META_KEY = "clearance.config"


@dataclass(frozen=True, slots=True)
class Entry:
    modules: tuple[str, ...]  # clearance.cli.<module>, whose register(app) adds the command
    help: str  # the command's own short help; tests/cli/test_lazy_cli.py keeps them equal


COMMANDS: dict[str, Entry] = {
    "init": Entry(
        ("setup",),
        "Write a commented clearance.toml, the default policy pack and a fresh audit signing key.",
    ),
    "config": Entry(("config",), "The effective configuration and where each value comes from."),
    "serve": Entry(
        ("serve",),
        "Serve the gateway (OpenAI + Anthropic APIs), /audit, /healthz and /metrics.",
    ),
    "worker": Entry(
        ("serve",),
        "Run queued document verifications (OCR, face match, liveness) until stopped.",
    ),
    "demo": Entry(
        ("serve",),
        "Run the whole product on demo data: a demo upstream, models, personas, and the gateway.",
    ),
    "screen": Entry(
        ("screening",),
        "Screen a name (or every row of a CSV file) against the loaded lists.",
    ),
    "audit": Entry(("audit",), "The tamper-evident audit log."),
    "witness": Entry(
        ("witness",), "A C2SP tlog-witness: cosigns checkpoints that extend what it saw."
    ),
    "upstreams": Entry(("catalog",), "Model providers Clearance forwards to."),
    "models": Entry(("catalog",), "The model catalog: classification, fallbacks, kill switch."),
    "orgs": Entry(
        ("principals", "directory", "owners"), "Organisations (employers, licence holders)."
    ),
    "users": Entry(("principals", "operators", "directory"), "People who use the API."),
    "keys": Entry(("principals", "directory"), "API keys (shown once, stored hashed)."),
    "identity": Entry(
        ("principals", "identity", "csca"), "Identity facts: nationality and US-person status."
    ),
    "licences": Entry(("principals", "directory"), "Deemed-export licences held by organisations."),
    "policy": Entry(("policy",), "The export-control policy (Cedar)."),
    "lists": Entry(("screening",), "Restricted-party lists: load, list, review hits."),
    "admin": Entry(("admin",), "The operator API (/admin/api)."),
    "guard": Entry(("guard",), "The misuse guard: flagged use, held accounts and their review."),
    "limits": Entry(("limits",), "Limits and budgets per person, organisation and key."),
}

# Every group module registers once per process into this app; commands are taken from it.
_registry = typer.Typer(add_completion=False)
_registered: set[str] = set()
_loaded: dict[str, Command] = {}


def load_command(name: str) -> Command:
    """Import the modules behind `name` (once) and return its click command."""
    if name in _loaded:
        return _loaded[name]
    for module in COMMANDS[name].modules:
        if module not in _registered:
            importlib.import_module(f"clearance.cli.{module}").register(_registry)
            _registered.add(module)
    group = typer.main.get_group(_registry)
    command = group.commands[name]
    _loaded[name] = command
    return command


class _Listed(TyperCommand):
    """What `clearance --help` shows for a command that has not been imported."""

    def invoke(self, ctx: Context) -> Any:  # pragma: no cover - resolve_command loads first
        raise RuntimeError(f"{self.name} was not loaded")


class LazyRoot(TyperGroup):
    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        # The suggestions for a mistyped command ("Did you mean ...?") read this table's keys.
        self.commands = {name: _Listed(name, help=e.help) for name, e in COMMANDS.items()}

    def list_commands(self, ctx: Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name in _loaded:
            return _loaded[cmd_name]
        return self.commands.get(cmd_name)

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and name in COMMANDS:
            command = load_command(name)
        return name, command, rest


app = typer.Typer(
    name="clearance",
    help="Export-control gateway for frontier AI models.",
    cls=LazyRoot,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Configuration file for every command (default ./clearance.toml, or "
            "CLEARANCE_CONFIG). A command's own --config wins.",
            show_default=False,
        ),
    ] = None,
) -> None:
    ctx.meta[CONFIG_META_KEY] = config


def main() -> None:
    try:
        app()
    except ClearanceError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        sys.exit(getattr(exc, "exit_code", 1))
