"""`clearance users operator grant|revoke|list`: who may use the portal's operator pages.

The commands join the `users` group of `cli.principals`. Each grant and revocation is an audit
entry naming the OS account that ran the command (`cli:<login>`).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from clearance.audit.service import AuditLog
from clearance.cli.context import ConfigOption, JsonOption, Runtime, open_runtime, operator
from clearance.cli.principals import users_app
from clearance.portal import operators
from clearance.principals.service import get_user

operator_app = typer.Typer(
    help="Operator roles: viewer, operator, admin (the console, /console; each implies the "
    "ones before it) and reviewer (the review queues).",
    no_args_is_help=True,
)
RoleOption = Annotated[
    str, typer.Option("--role", help=f"One of: {', '.join(sorted(operators.ROLES))}.")
]


def register(_app: typer.Typer) -> None:
    """The commands live on `users_app`, which `cli.principals` registers."""
    users_app.add_typer(operator_app, name="operator")


def _change(rt: Runtime, email: str, role: str, *, grant: bool) -> bool:
    with rt.engine.connect() as conn:
        user_id = get_user(conn, email).id
    log = AuditLog(rt.engine, rt.settings.audit)
    try:
        if grant:
            return operators.grant(rt.engine, log, user_id, role, actor=operator()) is not None
        operators.revoke(rt.engine, log, user_id, role, actor=operator())
        return True
    finally:
        log.close()  # integrates and signs a checkpoint covering the entry


@operator_app.command("grant")
def operator_grant(email: str, role: RoleOption, config: ConfigOption = None) -> None:
    """Give a portal account an operator role (it signs in to the portal as usual)."""
    with open_runtime(config) as rt:
        changed = _change(rt, email, role, grant=True)
    typer.echo(f"{email}: {role} {'granted' if changed else 'was already held'}")


@operator_app.command("revoke")
def operator_revoke(email: str, role: RoleOption, config: ConfigOption = None) -> None:
    """Take an operator role away; it stops working at the account's next request. The last
    admin cannot be revoked (grant admin to another account first)."""
    with open_runtime(config) as rt:
        _change(rt, email, role, grant=False)
    typer.echo(f"{email}: {role} revoked")


@operator_app.command("list")
def operator_list(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Accounts holding operator roles."""
    with open_runtime(config) as rt, rt.engine.connect() as conn:
        rows = operators.list_operators(conn)
    if as_json:
        out = [
            {
                "email": o.email,
                "subject": o.subject,
                "roles": list(o.roles),
                "granted_by": o.granted_by,
                "granted_at": o.granted_at.isoformat(),
            }
            for o in rows
        ]
        typer.echo(json.dumps(out))
        return
    for o in rows:
        typer.echo(f"{o.email}\t{','.join(o.roles)}\t{o.granted_by}\t{o.granted_at:%Y-%m-%d %H:%M}")
    if not rows:
        typer.echo("no operators")
