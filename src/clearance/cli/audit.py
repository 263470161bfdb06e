"""`clearance audit key | checkpoint | verify | query | export | hold add|release|list`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from clearance.audit import holds
from clearance.audit.archive import open_archive
from clearance.audit.bundle import FORMATS, Format, Selection, export_bundle, parse_moment
from clearance.audit.keys import NoteVerifier, load_signer
from clearance.audit.query import EntryFilter, scan, select
from clearance.audit.reader import LogReader
from clearance.audit.service import AuditLog
from clearance.audit.verify import verify_log
from clearance.cli.context import ConfigOption, JsonOption, Runtime, open_runtime, operator
from clearance.config import load_settings
from clearance.errors import ConfigError, VerificationError
from clearance.principals.service import get_user, get_user_by_subject
from clearance.store import connect, reading

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
hold_app = typer.Typer(
    help="Legal holds: stop the erasure of a person's, an org's or a case's evidence.",
    no_args_is_help=True,
)
audit_app.add_typer(hold_app, name="hold")
PROGRESS_FROM = 100_000  # entries; smaller logs verify in well under a second


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


@audit_app.command("key")
def key(config: ConfigOption = None) -> None:
    """Print the log's verifier key (C2SP signed-note `name+keyid+base64`) on the last line."""
    settings = load_settings(config)
    signer = load_signer(settings.audit.signing_key_file)
    typer.echo(f"origin: {settings.audit.origin}")
    typer.echo(signer.verifier.text)


@audit_app.command("checkpoint")
def checkpoint(config: ConfigOption = None) -> None:
    """Print the latest signed checkpoint; keep it to check later that the log still extends it."""
    with open_runtime(config) as rt:
        typer.echo(LogReader(rt.engine).checkpoint(), nl=False)


@audit_app.command("verify")
def verify(
    config: ConfigOption = None,
    checkpoint_file: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="An older signed checkpoint the log must extend."),
    ] = None,
    key_text: Annotated[
        str | None,
        typer.Option("--key", help="Verifier key (default: derived from the signing key)."),
    ] = None,
    database: Annotated[
        str | None, typer.Option("--database", help="Database URL, e.g. of an offline copy.")
    ] = None,
) -> None:
    """Recompute the tree from the stored entries and check every signed checkpoint."""
    settings = load_settings(config)
    if key_text is not None:
        verifier = NoteVerifier.from_text(key_text)
    else:
        verifier = load_signer(settings.audit.signing_key_file).verifier
    trusted = None if checkpoint_file is None else checkpoint_file.read_text(encoding="utf-8")
    engine = connect(database or settings.database_url)
    err = Console(stderr=True)
    try:
        with Progress(
            "verifying", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
        ) as bar:
            task = bar.add_task("verify", total=None, visible=False)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, visible=total >= PROGRESS_FROM)

            report = verify_log(
                engine,
                verifier,
                settings.audit.origin,
                trusted=trusted,
                progress=progress,
                archive=open_archive(settings.audit),
            )
    except VerificationError as exc:
        typer.echo(f"FAILED: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    latest = report.latest
    typer.echo(f"OK: {report.size} entries, {report.checkpoints} signed checkpoints verified")
    if latest is not None:
        typer.echo(f"latest checkpoint: size {latest.size}, root {latest.root.hex()}")
    if trusted is not None:
        typer.echo("the log extends the given checkpoint")


@audit_app.command("archive")
def archive_command(
    config: ConfigOption = None,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune", help="Then delete the archived entries and tiles from the database."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Write full tiles and entry bundles to [audit] archive (C2SP paths); --prune moves them."""
    from clearance.audit.archive import archive

    with open_runtime(config) as rt:
        store = open_archive(rt.settings.audit)
        if store is None:
            raise ConfigError("set [audit] archive to the directory the archive goes to")
        done = archive(rt.engine, store, prune=prune)
    if as_json:
        typer.echo(orjson.dumps(dataclasses.asdict(done)).decode())
        return
    typer.echo(
        f"archived entries below {done.archived_below} to {store} ({done.bundles} bundles, "
        f"{done.tiles} tiles written); entries below {done.pruned_below} are only there"
    )


@audit_app.command("query")
def query(
    subject: Annotated[
        str | None, typer.Option("--subject", help="Pseudonymous subject id.")
    ] = None,
    email: Annotated[
        str | None, typer.Option("--email", help="Resolve a user to their subject.")
    ] = None,
    model: Annotated[str | None, typer.Option("--model")] = None,
    entry_type: Annotated[str | None, typer.Option("--type", help="e.g. access_decision")] = None,
    since: Annotated[str | None, typer.Option("--since", help="RFC 3339 UTC, inclusive")] = None,
    until: Annotated[str | None, typer.Option("--until", help="RFC 3339 UTC, exclusive")] = None,
    status: Annotated[
        int | None, typer.Option("--status", help="HTTP status answered, e.g. 451")
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Reason code, e.g. controlled-foreign-person"),
    ] = None,
    effect: Annotated[
        str | None, typer.Option("--effect", help="allow | deny | fallback | error")
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="API path, e.g. /v1/chat/completions")
    ] = None,
    outcome: Annotated[
        str | None,
        typer.Option(
            "--outcome",
            help="forwarding | denied | rejected | failed | disconnected | suspended",
        ),
    ] = None,
    rule: Annotated[
        str | None,
        typer.Option("--rule", help="A policy rule the decision applied, e.g. controlled-foreign"),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Print matching entries as JSON lines ({"index": N, "entry": {...}}), oldest first.

    Entries are printed as stored (the bytes the tree proves); the filters also read entries of
    older schema versions by their typed fields."""
    with open_runtime(config) as rt:
        if email is not None:
            with reading(rt.engine) as conn:
                subject = get_user(conn, email).subject_id
        where = EntryFilter(
            subject,
            model,
            entry_type,
            since,
            until,
            status=status,
            reason=reason,
            effect=effect,
            endpoint=endpoint,
            outcome=outcome,
            rule=rule,
        )
        reader = LogReader(rt.engine, open_archive(rt.settings.audit))
        for index, record in select(scan(reader), where):
            typer.echo(orjson.dumps({"index": index, "entry": record}).decode())


def _cip_record(rt: Runtime, selection: Selection) -> dict[str, Any] | None:
    """A person's CIP record for their bundle, where [cip] keeps one; reading it is recorded
    (`identity.cip.view`) before the bundle collects its entries, so the bundle shows it."""
    if not rt.settings.cip.require or (selection.email is None and selection.subject is None):
        return None
    from clearance.identity import cip  # the vault's cryptography only where a record is read
    from clearance.identity.vault import EvidenceVault

    with rt.engine.connect() as conn:
        if selection.email is not None:
            user = get_user(conn, selection.email)
        else:
            assert selection.subject is not None
            user = get_user_by_subject(conn, selection.subject)
    log = AuditLog(rt.engine, rt.settings.audit)
    try:
        return cip.view(
            rt.engine,
            cip.CipKeys.of(EvidenceVault.open(rt.settings.identity)),
            log,
            rt.settings.cip,
            user.id,
            actor=operator(),
            purpose="auditor bundle export",
        ).as_json()
    finally:
        log.close()


@audit_app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", help="Directory to write (new or empty).")],
    fmt: Annotated[
        str, typer.Option("--format", help="Report and entries as: jsonl | csv | pdf")
    ] = "pdf",
    email: Annotated[str | None, typer.Option("--email", help="A user, by email.")] = None,
    subject: Annotated[
        str | None, typer.Option("--subject", help="A user, by pseudonymous subject id.")
    ] = None,
    org: Annotated[str | None, typer.Option("--org", help="An organisation's members.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="A model.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO 8601 date or time, UTC, inclusive")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="ISO 8601 date or time, UTC, exclusive")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Write an auditor's bundle: the matching entries with inclusion proofs against the latest
    checkpoint, the checkpoint, the verifier keys, a manifest and a report.

    Check it with `clearance-verify bundle DIR --key KEY` (verifier/, no Clearance needed)."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"one of {', '.join(FORMATS)}", param_hint="--format")
    format_: Format = "pdf" if fmt == "pdf" else "csv" if fmt == "csv" else "jsonl"
    selection = Selection(
        email=email,
        subject=subject,
        org=org,
        model=model,
        since=None if since is None else parse_moment(since, "--since"),
        until=None if until is None else parse_moment(until, "--until"),
    )
    with open_runtime(config) as rt:
        record = _cip_record(rt, selection)
        done = export_bundle(rt.engine, rt.settings, selection, format_, out, cip_record=record)
    if done.entries:
        typer.echo(
            f"wrote {done.entries} entries to {out} (checkpoint size {done.checkpoint.size})"
        )
    else:
        typer.echo(f"no entries match; wrote an empty bundle to {out}")
    if done.later:
        typer.echo(f"{done.later} newer matching entries await a later checkpoint")
    typer.echo(f"verify with: clearance-verify bundle {out} --key {done.log_key}")


@hold_app.command("add")
def hold_add(
    reason: Annotated[
        str, typer.Option("--reason", help="Why (kept in the log: name no one here).")
    ],
    email: Annotated[str | None, typer.Option("--email", help="A user, by email.")] = None,
    subject: Annotated[
        str | None, typer.Option("--subject", help="A user, by pseudonymous subject id.")
    ] = None,
    org: Annotated[str | None, typer.Option("--org", help="Every member of an org.")] = None,
    case: Annotated[
        int | None, typer.Option("--case", help="One identity verification (review) case.")
    ] = None,
    reference: Annotated[
        str | None, typer.Option("--reference", help="Subpoena, docket or case number.")
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Place a legal hold: the evidence in its scope is not erased, on request or by retention,
    until it is released. The hold is an audit entry (`hold.add`)."""
    given = [(n, v) for n, v in (("--email", email), ("--subject", subject), ("--org", org)) if v]
    if case is not None:
        given.append(("--case", str(case)))
    if len(given) != 1:
        raise typer.BadParameter("give exactly one of --email, --subject, --org, --case")
    with open_runtime(config) as rt:
        scope, value = holds.Scope.PERSON, subject or ""
        if email is not None:
            with reading(rt.engine) as conn:
                value = get_user(conn, email).subject_id  # the hold names the pseudonym
        elif org is not None:
            scope, value = holds.Scope.ORG, org
        elif case is not None:
            scope, value = holds.Scope.CASE, str(case)
        log = AuditLog(rt.engine, rt.settings.audit)
        try:
            hold = holds.add(
                rt.engine,
                log,
                scope=scope,
                value=value,
                reason=reason,
                reference=reference,
                actor=operator(),
            )
        finally:
            log.close()
    if as_json:
        typer.echo(orjson.dumps(hold.json()).decode())
        return
    typer.echo(f"hold {hold.id}: {hold.scope.value} {hold.value} held")


@hold_app.command("release")
def hold_release(
    hold_id: Annotated[int, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option("--reason", help="Why it ends (kept in the log).")],
    config: ConfigOption = None,
) -> None:
    """Release a legal hold; retention and erasure requests apply again (`hold.release`)."""
    with open_runtime(config) as rt:
        log = AuditLog(rt.engine, rt.settings.audit)
        try:
            hold = holds.release(rt.engine, log, hold_id, reason=reason, actor=operator())
        finally:
            log.close()
    typer.echo(f"hold {hold.id}: released")


@hold_app.command("list")
def hold_list(
    show_all: Annotated[
        bool, typer.Option("--all", help="Released holds too.", show_default=False)
    ] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Legal holds in force (with --all, released ones too), oldest first."""
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        found = holds.list_holds(conn, include_released=show_all)
    if as_json:
        typer.echo(orjson.dumps([h.json() for h in found]).decode())
        return
    for h in found:
        state = "active" if h.active else f"released {h.released_at:%Y-%m-%d}"
        typer.echo(
            f"{h.id}\t{h.scope.value}\t{h.value}\t{h.created_at:%Y-%m-%d}\t{state}\t"
            f"{h.reference or '-'}\t{h.reason}"
        )
    if not found:
        typer.echo("no legal holds" if show_all else "no legal holds in force")
