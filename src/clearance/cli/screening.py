"""`clearance screen ...` and `clearance lists load|list|rescreen|hits|resolve|resolve-org`."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import Connection

from clearance.audit.service import AuditLog
from clearance.cli.context import ConfigOption, JsonOption, Runtime, open_runtime, operator
from clearance.errors import InvalidInput, NotFound
from clearance.principals import directory
from clearance.principals.models import Org
from clearance.screening import hits, repository, service
from clearance.screening.matcher import Matcher
from clearance.screening.models import EntityType, ListFormat, Query, ScreeningResult
from clearance.screening.settings import thresholds

lists_app = typer.Typer(
    help="Restricted-party lists: load, list, review hits.", no_args_is_help=True
)


class QueryType(StrEnum):
    PERSON = "person"
    ENTITY = "entity"


def register(app: typer.Typer) -> None:
    app.command("screen")(screen)
    app.add_typer(lists_app, name="lists")


@contextmanager
def _audit(rt: Runtime) -> Iterator[AuditLog]:
    log = AuditLog(rt.engine, rt.settings.audit)
    try:
        yield log
    finally:
        log.close()


def _date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"birth date must be YYYY-MM-DD, not {value!r}") from exc


def _query(name: str, birth: str | None, nats: list[str], kind: str | None) -> Query:
    entity_type = None
    if kind:
        if kind.lower() not in ("person", "entity"):
            raise InvalidInput(f"type must be person or entity, not {kind!r}")
        entity_type = EntityType.PERSON if kind.lower() == "person" else EntityType.ENTITY
    codes = tuple(c.strip().upper() for n in nats for c in n.split(";") if c.strip())
    return Query(name, _date(birth), codes, entity_type)


def _print(result: ScreeningResult, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result.as_json(), ensure_ascii=False))
        return
    typer.echo(f"{result.query}: {result.status.value}")
    for m in result.matches:
        typer.echo(f"  {m.score:.3f} {m.list_name} {m.entry_id} {m.name} (as {m.matched_name!r})")
        typer.echo(f"        {'; '.join(m.why)}")


def screen(
    name: Annotated[str | None, typer.Argument(help="Name to screen.")] = None,
    birth_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD.")] = None,
    nationality: Annotated[
        list[str] | None, typer.Option(metavar="CC", help="ISO 3166 alpha-2; repeatable.")
    ] = None,
    type_: Annotated[QueryType | None, typer.Option("--type")] = None,
    file: Annotated[
        Path | None,
        typer.Option(help="CSV with header: name[,birth_date,nationality,type]."),
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Screen a name (or every row of a CSV file) against the loaded lists."""
    if (name is None) == (file is None):
        raise InvalidInput("give a NAME or --file FILE.csv")
    with open_runtime(config) as rt, rt.engine.connect() as conn:
        matcher = service.build_matcher(conn, thresholds(rt.settings))
    if name is not None:
        kind = type_.value if type_ else None
        _print(matcher.screen(_query(name, birth_date, nationality or [], kind)), as_json)
        return
    assert file is not None
    _screen_file(matcher, file, as_json)


def _screen_file(matcher: Matcher, file: Path, as_json: bool) -> None:
    """One result per row, in input order; a progress bar on stderr."""
    try:
        with file.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc}") from exc
    if rows and "name" not in rows[0]:
        raise InvalidInput(f"{file}: the header needs a 'name' column")
    with typer.progressbar(rows, label="screening", file=sys.stderr) as bar:
        for row in bar:
            query = _query(
                row.get("name") or "",
                row.get("birth_date"),
                [row.get("nationality") or ""],
                row.get("type") or None,
            )
            _print(matcher.screen(query), as_json)


@lists_app.command("load")
def lists_load(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", exists=True, dir_okay=False)],
    format_: Annotated[ListFormat, typer.Option("--format", help="List format.")],
    name: Annotated[str | None, typer.Option(help="List name (default: by format).")] = None,
    config: ConfigOption = None,
) -> None:
    """Load a list version (content-hashed), then re-screen every user."""
    with open_runtime(config) as rt, _audit(rt) as log:
        summary = service.load_lists(
            rt.engine,
            files,
            format_,
            name=name,
            actor=operator(),
            thresholds=thresholds(rt.settings),
            audit=log,
        )
    v = summary.version
    if not summary.created:
        typer.echo(f"{v.name}: unchanged (version {v.id}, {v.content_hash[:16]})")
        return
    skipped = ", ".join(f"{n} {why}" for why, n in v.skipped.items()) or "nothing"
    typer.echo(f"{v.name}: version {v.id}, {v.entry_count} entries, {v.content_hash[:16]}")
    typer.echo(f"  skipped: {skipped}")
    if summary.rescreen is not None:
        typer.echo(f"  {_rescreened(summary.rescreen)}")


def _rescreened(summary: service.RescreenSummary) -> str:
    changed = summary.changed
    moved = ", ".join(f"{n} now {s}" for s, n in sorted(changed.items())) or "no changes"
    return f"re-screened {summary.screened} users: {moved}"


@lists_app.command("rescreen")
def lists_rescreen(config: ConfigOption = None) -> None:
    """Screen every person and organisation again against the current lists, as a load does
    (once after upgrading: organisations flagged before migration 0027 get their hits stored)."""
    with open_runtime(config) as rt, _audit(rt) as log:
        summary = service.rescreen_all(rt.engine, thresholds=thresholds(rt.settings), audit=log)
    typer.echo(_rescreened(summary))


@lists_app.command("list")
def lists_list(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Every loaded version; the newest of each list is the one screening uses."""
    with open_runtime(config) as rt, rt.engine.connect() as conn:
        found = repository.history(conn)
        current = {v.id for v in repository.current(conn)}
    for v in found:
        record = {
            "name": v.name,
            "version": v.id,
            "format": v.format.value,
            "content_hash": v.content_hash,
            "entries": v.entry_count,
            "skipped": dict(v.skipped),
            "loaded_at": v.loaded_at.isoformat(),
            "current": v.id in current,
        }
        if as_json:
            typer.echo(json.dumps(record))
        else:
            mark = "*" if v.id in current else " "
            typer.echo(
                f"{mark} {v.name:16s} v{v.id:<4d} {v.format.value:8s} {v.entry_count:7d} entries"
                f"  {v.content_hash[:16]}  {v.loaded_at:%Y-%m-%d %H:%M}"
            )


@lists_app.command("hits")
def lists_hits(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """The review queue: every person's and organisation's current hits, highest score first."""
    with open_runtime(config) as rt, rt.engine.connect() as conn:
        found = hits.queue(conn)
    for h in found:
        record: dict[str, object] = {
            "user_id": h.user_id,
            "org_id": h.org_id,
            "list": h.list_name,
            "entry_id": h.entry_id,
            "matched_name": h.matched_name,
            "score": round(h.score, 3),
            "outcome": h.outcome.value,
            "why": list(h.why),
        }
        typer.echo(json.dumps(record, ensure_ascii=False) if as_json else _hit_line(h))


def _hit_line(h: hits.StoredHit) -> str:
    return (
        f"{h.holder.value} {h.holder_id}  {h.outcome.value:15s} {round(h.score, 3)}  "
        f"{h.list_name} {h.entry_id}  {h.matched_name}"
    )


@lists_app.command("resolve")
def lists_resolve(
    email: str,
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    entry_id: Annotated[str, typer.Argument(metavar="ENTRY_ID")],
    resolution: Annotated[service.Resolution, typer.Option("--as", help="The decision.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the database, digested in audit).")],
    config: ConfigOption = None,
) -> None:
    """Resolve a user's hit as a false positive or a true match."""
    with open_runtime(config) as rt, _audit(rt) as log:
        result = service.resolve(
            rt.engine,
            email,
            list_name,
            entry_id,
            resolution,
            reason,
            actor=operator(),
            thresholds=thresholds(rt.settings),
            audit=log,
        )
    typer.echo(f"{email}: {resolution.value} recorded; screening status now {result.status.value}")


@lists_app.command("resolve-org")
def lists_resolve_org(
    org: Annotated[str, typer.Argument(metavar="ORG", help="The organisation's name or id.")],
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    entry_id: Annotated[str, typer.Argument(metavar="ENTRY_ID")],
    resolution: Annotated[service.Resolution, typer.Option("--as", help="The decision.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the database, digested in audit).")],
    config: ConfigOption = None,
) -> None:
    """Resolve an organisation's hit as a false positive or a true match; its status applies to
    every member."""
    with open_runtime(config) as rt, _audit(rt) as log:
        with rt.engine.connect() as conn:
            found = _org(conn, org)
        service.resolve_org(
            rt.engine,
            found.id,
            list_name,
            entry_id,
            resolution,
            reason,
            actor=operator(),
            thresholds=thresholds(rt.settings),
            audit=log,
        )
        with rt.engine.connect() as conn:
            status = directory.get_org_by_id(conn, found.id).screening_status
    typer.echo(
        f"{found.name} (org {found.id}): {resolution.value} recorded; screening status now {status}"
    )


def _org(conn: Connection, ref: str) -> Org:
    """By name, as the `orgs` commands find it; failing that, digits are taken as its id."""
    try:
        return directory.get_org(conn, ref)
    except NotFound:
        if not (ref.isascii() and ref.isdigit() and len(ref) <= 9):  # ids are 32-bit
            raise
    return directory.get_org_by_id(conn, int(ref))
