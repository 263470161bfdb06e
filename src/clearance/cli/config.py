"""`clearance config show | reference`: the settings in effect, and the schema they follow."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import typer

from clearance.cli.context import ConfigOption, JsonOption
from clearance.config import Effective, Key, load_effective, schema

config_app = typer.Typer(
    help="The effective configuration and where each value comes from.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


@config_app.command("show")
def show(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every setting in effect, secrets masked, and its source: default, file or env."""
    settings, effective = load_effective(config)
    if as_json:
        rows = [
            {"key": e.key.dotted, "value": e.shown, "source": e.source, "doc": e.key.spec.doc}
            for e in effective
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"# in effect for {settings.config_file} (secrets masked)")
    typer.echo(render(effective), nl=False)


@config_app.command("reference")
def reference_command() -> None:
    """The settings as a Markdown table (docs/configuration.md holds the same)."""
    typer.echo(reference(), nl=False)


def render(effective: Iterable[Effective]) -> str:
    """TOML with dotted keys, each under its doc and followed by its source."""
    lines: list[str] = []
    table = ""
    for e in effective:
        if e.key.table != table:
            lines.append("")
            table = e.key.table
        lines.append(f"# {e.key.spec.doc}")
        lines.append(f"{e.key.dotted} = {toml_value(e.shown)}  # {e.source}")
    return "\n".join(lines).lstrip("\n") + "\n"


def reference(keys: Iterable[Key] | None = None) -> str:
    """One Markdown table of every setting: default, allowed values, variables, meaning."""
    lines = [
        "| key | default | values | environment | meaning |",
        "|---|---|---|---|---|",
    ]
    for key in schema() if keys is None else keys:
        env = ", ".join(f"`{v}`" for v in key.variables) or "(file only)"
        default = toml_value(key.shown(key.default))
        cells = (f"`{key.dotted}`", f"`{default}`", key.expected, env, key.spec.doc)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def toml_value(value: Any) -> str:
    """A JSON-typed value written as TOML; None, which TOML cannot write, is the file's ""."""
    if value is None:
        return '""'
    if isinstance(value, bool | int | float | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        pairs = ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + pairs + " }" if pairs else "{}"
    return json.dumps(str(value), ensure_ascii=False)
