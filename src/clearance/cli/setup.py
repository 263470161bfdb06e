"""`clearance init DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("init")(init)


def init(
    directory: Annotated[Path, typer.Argument(help="Directory to create or fill.")],
    force: Annotated[bool, typer.Option(help="Overwrite an existing configuration.")] = False,
) -> None:
    """Write a commented clearance.toml, the default policy pack and a fresh audit signing key."""
    from clearance.setup import write_instance

    written = write_instance(directory, force=force)
    for path in written:
        typer.echo(f"wrote {path}")
