"""`clearance policy check|validate`."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated

import typer

from clearance.cli.context import ConfigOption, JsonOption, open_runtime
from clearance.config import load_settings
from clearance.policy import geo
from clearance.policy.engine import validate
from clearance.policy.facts import principal_facts
from clearance.policy.models import Action, Effect, RequestContext
from clearance.policy.service import PolicyService
from clearance.principals.service import get_user
from clearance.screening import ownership
from clearance.screening.service import build_matcher
from clearance.screening.settings import thresholds
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
    at: Annotated[
        str | None,
        typer.Option("--at", metavar="YYYY-MM-DD", help="decide as of this day (UTC noon)"),
    ] = None,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Decide whether EMAIL may use MODEL now, or as of --at DATE (from --ip), and why."""
    ip_country = geo.country_of(geo.parse_ip(ip)) if ip else ""
    day = _day(at)
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        user = get_user(conn, email)
        moment = None
        facts = None
        if day is not None:
            # The moment (expiries), and the dated rules in force that day (ownership).
            moment = datetime.combine(day, time(12), UTC).timestamp()
            facts = principal_facts(user)
            if user.org_id is not None:
                found = ownership.finding_on(
                    conn, build_matcher(conn, thresholds(rt.settings)), user.org_id,
                    review=rt.settings.screening.ownership_review, day=day,
                )  # fmt: skip
                facts = replace(
                    facts,
                    org_ownership=found.status,
                    org_owner_share=found.share,
                    org_ownership_rule=found.rule or "",
                )
        decision = PolicyService(rt.settings).decide(
            conn,
            user,
            model,
            RequestContext(action=action, ip_country=ip_country),
            allow_fallback=not no_fallback,
            now=moment,
            principal=facts,
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


@policy_app.command("rules")
def rules_cmd(
    at: Annotated[
        str | None, typer.Option("--at", metavar="YYYY-MM-DD", help="default: today (UTC)")
    ] = None,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """The rules that apply on a day: the policy's rules, and the dated ownership rules with
    whether each is in force then."""
    day = _day(at) or datetime.now(UTC).date()
    service = PolicyService(load_settings(config))
    cedar = [
        {"id": r.rule, "reason": r.reason, "legal_basis": r.legal_basis, "status": r.status}
        for r in service.engine.rules.values()
    ]
    dated = [
        {
            "id": r.id,
            "name": r.name,
            "in_force": r.in_force(day),
            "effective_from": r.effective_from.isoformat(),
            "suspended": [[a.isoformat(), b.isoformat()] for a, b in r.suspended],
            "threshold": r.threshold,
            "citation": r.citation,
        }
        for r in ownership.RULES
    ]
    if json_out:
        typer.echo(json.dumps({"date": day.isoformat(), "policy": cedar, "ownership": dated}))
        return
    typer.echo(f"rules on {day.isoformat()}:")
    for rule in cedar:
        typer.echo(f"  [{rule['id']}] ({rule['status']}) {rule['legal_basis']}")
    for d in dated:
        state = "in force" if d["in_force"] else "not in force"
        typer.echo(f"  [{d['id']}] {state}: {d['name']}; {d['citation']}")


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"--at must be a date, YYYY-MM-DD, not {text!r}") from None


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
