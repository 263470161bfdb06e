"""The root `clearance` command. Groups register here; errors become one clean line and exit 1."""

from __future__ import annotations

import sys

import typer

from clearance.errors import ClearanceError

app = typer.Typer(
    name="clearance",
    help="Export-control gateway for frontier AI models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    # Each group module exposes `app` (a Typer) or `register(app)`; importing them here keeps
    # the domains free of any CLI import.
    from clearance.cli import (
        admin,
        audit,
        catalog,
        identity,
        operators,
        policy,
        principals,
        screening,
        serve,
        setup,
    )

    setup.register(app)
    audit.register(app)
    catalog.register(app)
    principals.register(app)
    identity.register(app)  # adds to principals' `identity` group
    operators.register(app)  # adds to principals' `users` group
    policy.register(app)
    serve.register(app)
    screening.register(app)
    admin.register(app)


_register()


def main() -> None:
    try:
        app()
    except ClearanceError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        sys.exit(1)
