"""`clearance admin tokens create|list|revoke`: bearer tokens for the operator API (/admin/api)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from clearance.admin import tokens
from clearance.cli.context import ConfigOption, JsonOption, open_runtime, operator
from clearance.store import reading

admin_app = typer.Typer(help="The operator API (/admin/api).", no_args_is_help=True)
tokens_app = typer.Typer(help="Scoped admin tokens.", no_args_is_help=True)
SCOPES = ", ".join(s.value for s in tokens.Scope)


def register(app: typer.Typer) -> None:
    app.add_typer(admin_app, name="admin")
    admin_app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
def create(
    name: str,
    scope: Annotated[list[str], typer.Option("--scope", help=f"Repeat for each scope: {SCOPES}.")],
    expires_days: Annotated[
        int, typer.Option("--expires-days", help="Days until the token stops working.")
    ] = 90,
    config: ConfigOption = None,
) -> None:
    """Create a token; its secret is printed once and never stored."""
    scopes = tokens.parse_scopes(scope)
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            token, secret = tokens.create(
                conn, name, scopes, created_by=operator(), expires_in_days=expires_days
            )
        rt.record(
            "admin_token.create",
            token.id,
            {"name": token.name, "scopes": sorted(s.value for s in scopes), "days": expires_days},
        )
    typer.echo(f"admin token {token.id} ({', '.join(sorted(scopes))}), shown once:")
    typer.echo(secret)


@tokens_app.command("list")
def list_tokens(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Every token, active or not (never the secrets)."""
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        found = tokens.list_all(conn)
    rows = [
        {
            "id": t.id,
            "name": t.name,
            "scopes": sorted(s.value for s in t.scopes),
            "created_by": t.created_by,
            "expires_at": t.expires_at.isoformat() if t.expires_at else None,
            "revoked": t.revoked_at is not None,
        }
        for t in found
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for t in found:
        expiry = t.expires_at.date().isoformat() if t.expires_at else "never"
        state = "revoked" if t.revoked_at else f"expires {expiry}"
        typer.echo(f"{t.id}\t{t.name}\t{','.join(sorted(t.scopes))}\t{state}")
    if not found:
        typer.echo("no admin tokens")


@tokens_app.command("revoke")
def revoke(token_id: str, config: ConfigOption = None) -> None:
    """Revoke a token at once, on every worker (it is checked on each request)."""
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            tokens.revoke(conn, token_id)
        rt.record("admin_token.revoke", token_id, {})
    typer.echo(f"admin token {token_id} revoked")
