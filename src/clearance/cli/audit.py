"""`clearance audit key | checkpoint | verify`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from clearance.audit.keys import NoteVerifier, load_signer
from clearance.audit.reader import LogReader
from clearance.audit.verify import verify_log
from clearance.cli.context import ConfigOption, open_runtime
from clearance.config import load_settings
from clearance.errors import VerificationError
from clearance.store import connect

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
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
                engine, verifier, settings.audit.origin, trusted=trusted, progress=progress
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
