"""`clearance limits set|show`: requests and tokens per minute, concurrent requests and spend
budgets per person, organisation and key, and the default per person (docs/limits.md)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from clearance.catalog.service import load_catalog
from clearance.cli.context import ConfigOption, JsonOption, open_runtime, operator
from clearance.errors import InvalidInput
from clearance.limits import service
from clearance.limits.models import Limit, Period, Scope, Values, amount
from clearance.store import reading

limits_app = typer.Typer(
    help="Limits and budgets per person, organisation and key.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(limits_app, name="limits")


@limits_app.command("set")
def set_limits(
    user: Annotated[
        str | None, typer.Option("--user", metavar="EMAIL", help="One verified person.")
    ] = None,
    org: Annotated[
        str | None, typer.Option("--org", metavar="ORG", help="An organisation, all together.")
    ] = None,
    key: Annotated[str | None, typer.Option("--key", metavar="ID", help="One API key.")] = None,
    default: Annotated[
        bool, typer.Option("--default", help="Every person without a limit of their own.")
    ] = False,
    rpm: Annotated[
        int | None,
        typer.Option("--rpm", metavar="N", help="Requests per minute (0: no limit).", min=0),
    ] = None,
    tpm: Annotated[
        int | None,
        typer.Option(
            "--tpm", metavar="N", help="Tokens per minute, as the upstream counts (0: none).", min=0
        ),
    ] = None,
    concurrent: Annotated[
        int | None,
        typer.Option(
            "--concurrent", metavar="N", help="Requests (streams) at once (0: no limit).", min=0
        ),
    ] = None,
    budget: Annotated[
        str | None,
        typer.Option("--budget", metavar="AMOUNT", help="Spend per period (0: no budget)."),
    ] = None,
    period: Annotated[
        Period | None, typer.Option("--period", help="The budget's period: day or month.")
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Set limits for a person, an organisation, a key or the default per person."""
    chosen = [
        (s, v)
        for s, v in (
            (Scope.USER, user),
            (Scope.ORG, org),
            (Scope.KEY, key),
            (Scope.DEFAULT, "" if default else None),
        )
        if v is not None
    ]
    if len(chosen) != 1:
        raise InvalidInput("name exactly one of --user EMAIL, --org ORG, --key ID, --default")
    if rpm is None and tpm is None and concurrent is None and budget is None and period is None:
        raise InvalidInput("set at least one of --rpm, --tpm, --concurrent, --budget")
    scope, name = chosen[0]
    change = Values(rpm, tpm, concurrent, service.parse_budget(budget), period)
    actor = operator()
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            limit = service.set_limit(conn, scope, name, change, actor)
        details: dict[str, object] = {"scope": scope.value}
        details.update(
            {
                k: v
                for k, v in zip(("rpm", "tpm", "concurrent"), (rpm, tpm, concurrent), strict=True)
                if v is not None
            }
        )
        if budget is not None:
            details["budget"] = str(change.budget)
        if period is not None:
            details["period"] = period.value
        index = rt.record("limits.set", f"{scope.value}:{name}" if name else scope.value, details)
        unpriced = []
        if budget is not None and change.budget:
            with rt.engine.connect() as conn:
                catalog = load_catalog(conn)
            unpriced = sorted(m.id for m in catalog.models.values() if not m.priced)
    label = scope.value if not name else f"{scope.value} {name}"
    if unpriced:  # they are served without a charge while the budget lasts
        typer.echo(
            "note: models without a price are not charged to a budget: "
            + ", ".join(unpriced)
            + " (clearance models update MODEL --input-price P --output-price P)",
            err=True,
        )
    if as_json:
        shown = {"scope": scope.value, "target": name or None, "removed": True}
        typer.echo(json.dumps({**(shown if limit is None else limit.json()), "audit_index": index}))
        return
    if limit is None:
        typer.echo(f"{label}: no limits left (audit entry {index})")
    else:
        typer.echo(f"{label}: {_values(limit.values)} (audit entry {index})")


@limits_app.command("show")
def show(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Every limit: the default per person first, then people, organisations and keys."""
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        found = service.list_limits(conn)
        redis = rt.settings.redis.url
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "counted_in": "redis" if redis else "process",
                    "limits": [lim.json() for lim in found],
                }
            )
        )
        return
    for lim in found:
        typer.echo(_line(lim))
    if not found:
        typer.echo("no limits set")


def _line(lim: Limit) -> str:
    who = lim.scope.value if lim.scope is Scope.DEFAULT else f"{lim.scope.value} {lim.name}"
    return f"{who}\t{_values(lim.values)}\t{lim.updated_by}\t{lim.updated_at:%Y-%m-%d %H:%M}"


def _values(v: Values) -> str:
    parts = [
        f"{n} {x}"
        for n, x in (("rpm", v.rpm), ("tpm", v.tpm), ("concurrent", v.concurrent))
        if x is not None
    ]
    if v.budget is not None and v.period is not None:
        parts.append(f"budget {amount(v.budget)}/{v.period.value}")
    return ", ".join(parts) or "-"
