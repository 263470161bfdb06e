"""`clearance policy check|validate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from clearance.cli.context import ConfigOption, JsonOption, open_runtime
from clearance.config import load_settings
from clearance.policy import geo
from clearance.policy.engine import validate
from clearance.policy.models import Action, Effect, RequestContext
from clearance.policy.service import PolicyService
from clearance.principals.service import get_user
from clearance.store import reading

policy_app = typer.Typer(help="The export-control policy (Cedar).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")


@policy_app.command("check")
def check(
    email: str,
    model: str,
    ip: Annotated[str | None, typer.Option("--ip", metavar="ADDR")] = None,
    action: Annotated[Action, typer.Option("--action")] = Action.INFERENCE,
    no_fallback: Annotated[bool, typer.Option("--no-fallback")] = False,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Decide whether EMAIL may use MODEL now (from --ip), and why."""
    ip_country = geo.country_of(geo.parse_ip(ip)) if ip else ""
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        user = get_user(conn, email)
        decision = PolicyService(rt.settings).decide(
            conn,
            user,
            model,
            RequestContext(action=action, ip_country=ip_country),
            allow_fallback=not no_fallback,
        )
    if json_out:
        typer.echo(json.dumps(decision.as_dict()))
        return
    served = f" -> serves {decision.model_served}" if decision.effect is Effect.FALLBACK else ""
    typer.echo(f"{decision.effect.value.upper()}: {email} / {model}{served}")
    for r in decision.reasons:
        typer.echo(f"  [{r.rule}] {r.reason}")
        if r.legal_basis:
            typer.echo(f"      legal basis: {r.legal_basis}")
    typer.echo(f"  policy {decision.policy_hash}  facts {decision.facts_version}")


@policy_app.command("validate")
def validate_cmd(
    files: Annotated[list[Path] | None, typer.Argument(metavar="[FILE...]")] = None,
    config: ConfigOption = None,
) -> None:
    """Check policy files (default: the configured ones) against the schema."""
    paths = files or list(load_settings(config).policy.files)
    failed = False
    for path in paths:
        errors = validate(path.read_text(encoding="utf-8"))
        for err in errors:
            typer.echo(f"{path}: {err}", err=True)
        failed = failed or bool(errors)
        if not errors:
            typer.echo(f"{path}: ok")
    if failed:
        raise typer.Exit(1)
