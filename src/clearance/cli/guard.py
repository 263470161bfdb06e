"""`clearance guard cases|case|clear|confirm|release|flags|status`: the misuse guard's review
queue (guard/review.py) from the command line; `--json` prints the operator API's shapes."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from clearance.audit.service import AuditLog
from clearance.cli.context import ConfigOption, JsonOption, Runtime, open_runtime, operator
from clearance.errors import ConfigError, InvalidInput
from clearance.guard import review
from clearance.guard.review import Decision, Flag, GuardCase
from clearance.identity.vault import EvidenceVault
from clearance.principals import service as principals
from clearance.store import reading

guard_app = typer.Typer(
    help="The misuse guard: flagged use, held accounts and their review.", no_args_is_help=True
)

CaseArgument = Annotated[int, typer.Argument(metavar="ID", help="The guard case number.")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (kept with the case).")]


def register(app: typer.Typer) -> None:
    app.add_typer(guard_app, name="guard")


@contextmanager
def _log(rt: Runtime) -> Iterator[AuditLog]:
    log = AuditLog(rt.engine, rt.settings.audit)
    try:
        yield log
    finally:
        log.close()  # integrates and signs a checkpoint covering the entries


def _vault(rt: Runtime) -> EvidenceVault | None:
    """The evidence vault holding the excerpts; without its master key they cannot be shown."""
    try:
        return EvidenceVault.open(rt.settings.identity)
    except ConfigError as exc:
        typer.echo(f"warning: excerpts not shown: {exc.detail}", err=True)
        return None


def _case_line(c: GuardCase) -> str:
    score = "-" if c.max_score is None else f"{c.max_score:.2f}"
    return (
        f"{c.id}\t{c.status}\t{c.email}\t{c.opened_at:%Y-%m-%d %H:%M}\t{len(c.flags)} flags\t"
        f"{','.join(c.models) or '-'}\t{','.join(c.categories) or '-'}\tmax {score}"
    )


def _flag_line(f: Flag) -> str:
    cleared = "cleared" if f.cleared_at is not None else "counts"
    return (
        f"{f.created_at:%Y-%m-%d %H:%M}\t{f.model_id}\t{f.stage}\t"
        f"{','.join(f.categories) or '-'}\t{f.score:.2f}\t{cleared}"
    )


@guard_app.command("cases")
def cases(
    status: Annotated[
        str | None,
        typer.Option("--status", metavar="pending|cleared|confirmed", help="Only these cases."),
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Guard cases, pending first, then oldest first."""
    if status is not None and status not in review.STATUSES:
        raise InvalidInput("--status must be pending, cleared or confirmed")
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        found = review.list_cases(conn, status)
    if as_json:
        typer.echo(json.dumps(review.cases_json(found)))
        return
    for c in found:
        typer.echo(_case_line(c))
    if not found:
        typer.echo("no guard cases" if status is None else f"no {status} guard cases")


@guard_app.command("case")
def case(case_id: CaseArgument, as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Open a case: its flags with their excerpts, decrypted (an audited view)."""
    with open_runtime(config) as rt, _log(rt) as log:
        opened = review.open_case(rt.engine, _vault(rt), log, case_id, actor=operator())
    if as_json:
        typer.echo(json.dumps(review.opened_json(opened)))
        return
    typer.echo(_case_line(opened.case))
    c = opened.case
    if c.decided_by is not None:
        typer.echo(f"decided {c.status} by {c.decided_by}: {c.reason}")
    for flag, excerpt in opened.excerpts:
        typer.echo(f"  flag {flag.id}\t{_flag_line(flag)}")
        typer.echo(f"    {'(excerpt erased)' if excerpt is None else excerpt!r}")


def _decide(case_id: int, outcome: Decision, reason: str, config: ConfigOption) -> None:
    with open_runtime(config) as rt, _log(rt) as log:
        decided, index = review.decide(
            rt.engine, log, case_id, actor=operator(), outcome=outcome, reason=reason
        )
    effect = (
        "controlled models available again"
        if outcome == "cleared"
        else "controlled models stay refused (clearance guard release lifts the hold)"
    )
    typer.echo(f"case {decided.id} {outcome} ({decided.email}): {effect} (audit entry {index})")


@guard_app.command("clear")
def clear(case_id: CaseArgument, reason: ReasonOption, config: ConfigOption = None) -> None:
    """Clear a case: the hold is lifted and its flags no longer count as strikes."""
    _decide(case_id, "cleared", reason, config)


@guard_app.command("confirm")
def confirm(case_id: CaseArgument, reason: ReasonOption, config: ConfigOption = None) -> None:
    """Confirm a case: the person's controlled models stay refused until released."""
    _decide(case_id, "confirmed", reason, config)


@guard_app.command("release")
def release(email: str, reason: ReasonOption, config: ConfigOption = None) -> None:
    """Lift a confirmed hold; the person's remaining flags are cleared."""
    with open_runtime(config) as rt, _log(rt) as log:
        _subject, index = review.release(rt.engine, log, email, actor=operator(), reason=reason)
    typer.echo(f"{email}: hold released, controlled models available again (audit entry {index})")


@guard_app.command("flags")
def flags(email: str, as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """A person's flags, newest first: time, model, stage, categories, score (no excerpt)."""
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        user = principals.get_user(conn, email)
        found = review.flags_for(conn, user.id)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "email": user.email,
                    "subject": user.subject_id,
                    "usage_hold": user.usage_hold,
                    "flags": [review.flag_json(f) for f in found],
                }
            )
        )
        return
    typer.echo(f"{user.email}: hold {user.usage_hold or 'none'}; {len(found)} flags")
    for f in found:
        typer.echo(f"  {_flag_line(f)}")


@guard_app.command("status")
def status(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """The guard's effective settings and counts: pending cases, flags in the last 24 h."""
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        counted = review.counts(conn)
        settings = rt.settings.guard
    values = {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(settings).items()
    }
    # The key's variable by name, and whether it is set: never its value.
    values["api_key_set"] = bool(settings.api_key_env and os.environ.get(settings.api_key_env))
    out = {"enabled": settings.enabled, "settings": values, **counted}
    if as_json:
        typer.echo(json.dumps(out))
        return
    typer.echo(f"guard: {settings.kind or 'off'}")
    for key, value in values.items():
        typer.echo(f"  {key} = {value!r}")
    typer.echo(f"pending cases: {counted['pending_cases']}")
    typer.echo(f"flags in the last 24 h: {counted['flags_24h']}")


@guard_app.command("purge")
def purge(config: ConfigOption = None) -> None:
    """Erase flagged excerpts older than [guard] excerpt_retention_days (the maintenance pass
    does this on every worker; this is for an instance that runs none)."""
    with open_runtime(config) as rt, _log(rt) as log:
        days = rt.settings.guard.excerpt_retention_days
        vault = EvidenceVault.open(rt.settings.identity)
        count = review.purge_excerpts(rt.engine, vault, log, retention_days=days, actor=operator())
    typer.echo(f"erased {count} flagged excerpts older than {days} days")
