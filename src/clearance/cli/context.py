"""What every command needs: the settings and an engine, built once per invocation."""

from __future__ import annotations

import getpass
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import Engine

from clearance.audit.entries import admin_action
from clearance.audit.service import AuditLog
from clearance.cli.app import CONFIG_META_KEY
from clearance.config import Settings, load_settings
from clearance.store import connect, migrate


def _root_config(ctx: typer.Context, value: Path | None) -> Path | None:
    """A command's own --config, else `clearance --config FILE <command>`'s; with neither,
    load_settings falls back to CLEARANCE_CONFIG, then ./clearance.toml."""
    return value if value is not None else ctx.meta.get(CONFIG_META_KEY)


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Configuration file (default: clearance --config, CLEARANCE_CONFIG, "
        "./clearance.toml).",
        show_default=False,
        callback=_root_config,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    engine: Engine

    def record(
        self,
        action: str,
        target: str,
        details: Mapping[str, object],
        *,
        subject: str | None = None,
    ) -> int:
        """Append an operator action to the audit log; returns its index once durable.
        `subject` names the (pseudonymous) person concerned, so their records can be found."""
        entry = admin_action(
            actor=operator(), action=action, target=target, details=details, subject=subject
        )
        return self.append([entry])[0]

    def append(self, entries: Sequence[bytes]) -> list[int]:
        """Append entries (in one transaction) once the change they record has committed."""
        if not entries:
            return []
        log = AuditLog(self.engine, self.settings.audit)
        try:
            return log.append_many(entries)
        finally:
            log.close()  # integrates and signs a checkpoint covering these entries


def operator() -> str:
    """Who ran the command: the OS account (an operator identity, not a data subject)."""
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli:unknown"


@contextmanager
def open_runtime(config: Path | None) -> Iterator[Runtime]:
    """Load settings, open the database and bring its schema up to date."""
    settings = load_settings(config)
    engine = connect(settings.database_url)
    try:
        migrate(engine)
        yield Runtime(settings=settings, engine=engine)
    finally:
        engine.dispose()
