"""`clearance orgs|users|keys|licences ...` and `clearance identity attest`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated

import typer

from clearance.cli.context import ConfigOption, JsonOption, open_runtime, operator
from clearance.errors import InvalidInput
from clearance.jobs import key_revocation
from clearance.policy.facts import end_of_day
from clearance.principals import directory, service
from clearance.principals.models import Method, UsPerson, user_json
from clearance.screening.service import screen_org, screen_user
from clearance.store import reading

orgs_app = typer.Typer(help="Organisations (employers, licence holders).", no_args_is_help=True)
users_app = typer.Typer(help="People who use the API.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (shown once, stored hashed).", no_args_is_help=True)
identity_app = typer.Typer(
    help="Identity facts: nationality and US-person status.", no_args_is_help=True
)
licences_app = typer.Typer(
    help="Deemed-export licences held by organisations.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(orgs_app, name="orgs")
    app.add_typer(users_app, name="users")
    app.add_typer(keys_app, name="keys")
    app.add_typer(identity_app, name="identity")
    app.add_typer(licences_app, name="licences")


def parse_date(value: str | None, what: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"{what} must be YYYY-MM-DD, not {value!r}") from exc


@orgs_app.command("add")
def orgs_add(
    org: Annotated[str, typer.Argument(metavar="ORG")],
    country: Annotated[str | None, typer.Option("--country", metavar="CC")] = None,
    config: ConfigOption = None,
) -> None:
    """Add an organisation."""
    outbox: list[bytes] = []
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            rec = service.add_org(conn, org, country)
            screening = screen_org(conn, rec.id, outbox=outbox)
        rt.record("org.add", f"org:{rec.id}", {"country": rec.country})
        rt.append(outbox)
    typer.echo(f"organisation {rec.name} (id {rec.id}); screening: {screening.status.value}")


@users_app.command("add")
def users_add(
    email: str,
    name: Annotated[str | None, typer.Option("--name")] = None,
    birth_date: Annotated[str | None, typer.Option("--birth-date", metavar="YYYY-MM-DD")] = None,
    org: Annotated[str | None, typer.Option("--org")] = None,
    residence: Annotated[str | None, typer.Option("--residence", metavar="CC")] = None,
    config: ConfigOption = None,
) -> None:
    """Add a user. They may use uncontrolled models once they have a key."""
    born = parse_date(birth_date, "--birth-date")
    outbox: list[bytes] = []
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            user = service.add_user(
                conn, email, name=name, birth_date=born, org=org, residence=residence
            )
            # Screened on creation, in the same transaction: nobody exists unscreened.
            screening = screen_user(conn, user.id, outbox=outbox)
        rt.record("user.add", user.subject_id, {}, subject=user.subject_id)
        rt.append(outbox)
    typer.echo(
        f"user {user.email} (subject {user.subject_id}); screening: {screening.status.value}"
    )


@keys_app.command("create")
def keys_create(
    email: str,
    name: Annotated[str | None, typer.Option("--name", metavar="N")] = None,
    no_fallback: Annotated[
        bool, typer.Option("--no-fallback", help="Deny instead of serving a fallback model.")
    ] = False,
    expires: Annotated[
        str | None,
        typer.Option("--expires", metavar="YYYY-MM-DD", help="Valid through this day (UTC)."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="Scope the key to this model; repeatable (default: all)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create an API key. The key is printed once, on the last line; only its hash is kept."""
    until = parse_date(expires, "--expires")
    # Good through the named day, like a licence: void from the next midnight UTC.
    expires_at = None if until is None else datetime.fromtimestamp(end_of_day(until), UTC)
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            rec, secret = service.create_key(
                conn,
                email,
                name=name,
                allow_fallback=not no_fallback,
                expires_at=expires_at,
                scope=tuple(model or ()),
            )
            subject = service.get_user_by_id(conn, rec.user_id).subject_id
        rt.record(
            "key.create",
            subject,
            {
                "key_id": rec.id,
                "allow_fallback": rec.allow_fallback,
                "expires_at": expires_at.isoformat() if expires_at else None,
                "models": list(rec.models) or None,
            },
            subject=subject,
        )
    scoped = f"; models {', '.join(rec.models)}" if rec.models else ""
    typer.echo(
        f"key {rec.id} for {email} (fallback {'on' if rec.allow_fallback else 'off'}{scoped})"
    )
    typer.echo("store it now; it cannot be shown again:")
    typer.echo(secret)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID")], config: ConfigOption = None
) -> None:
    """Revoke a key at once."""
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            service.revoke_key(conn, key_id)
        rt.record("key.revoke", key_id, {})
    typer.echo(f"key {key_id} revoked")


@keys_app.command("scope")
def keys_scope(
    key_id: Annotated[str, typer.Argument(metavar="ID")],
    model: Annotated[
        list[str] | None, typer.Option("--model", help="A model the key may use; repeatable.")
    ] = None,
    all_models: Annotated[
        bool, typer.Option("--all-models", help="Lift the scope: every model again.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Scope a key to some models (others are refused with 403), or lift its scope."""
    if bool(model) == all_models:
        raise InvalidInput("give --model (repeatable) or --all-models")
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            key = service.scope_key(conn, key_id, tuple(model or ()))
        index = rt.record("key.scope", key_id, {"models": list(key.models) or None})
    shown = ", ".join(key.models) if key.models else "every model"
    typer.echo(f"key {key_id}: {shown} (audit entry {index})")


@keys_app.command("revoke-org")
def keys_revoke_org(
    org: Annotated[str, typer.Argument(metavar="ORG")],
    reason: Annotated[str, typer.Option("--reason", help="Why (goes into the audit log).")],
    config: ConfigOption = None,
) -> None:
    """Revoke every key of an organisation's members, as a job `clearance worker` runs (one
    `key.revoke` entry per key); follow it in the console at /console/jobs/ID."""
    if not reason.strip():
        raise InvalidInput("--reason is required")
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            found = directory.get_org(conn, org)
            job, total = key_revocation.enqueue(
                conn, found, reason=reason.strip(), actor=operator()
            )
        index = rt.record(
            "keys.revoke_org",
            f"org:{found.id}",
            {"org": found.name, "reason": reason.strip(), "job": job, "keys": total},
        )
    typer.echo(f"job {job} queued: {total} keys of {found.name} to revoke (audit entry {index})")


@identity_app.command("attest")
def identity_attest(
    email: str,
    nationality: Annotated[list[str], typer.Option("--nationality", metavar="CC")],
    us_person: Annotated[UsPerson, typer.Option("--us-person")],
    method: Annotated[Method, typer.Option("--method")],
    expires: Annotated[str | None, typer.Option("--expires", metavar="YYYY-MM-DD")] = None,
    config: ConfigOption = None,
) -> None:
    """Record identity facts an operator has verified (in person, from a document, or an
    assertion). Self-service verification produces the same facts."""
    until = parse_date(expires, "--expires")
    if method is Method.REMOTE:
        raise InvalidInput("--method remote is for self-service verification, not attestation")
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            user = service.get_user(conn, email)
            facts = service.set_identity(
                conn,
                user.id,
                nationalities=nationality,
                us_person=us_person,
                method=method,
                source="attestation",
                expires=until,
                max_age_days=rt.settings.policy.verification_max_age_days,
            )
        rt.record(
            "identity.attest",
            user.subject_id,
            {
                "nationalities": list(facts.nationalities),
                "us_person": facts.us_person.value,
                "method": facts.method.value,
                "expires": facts.expires.isoformat(),
            },
            subject=user.subject_id,
        )
    typer.echo(
        f"{email}: {', '.join(facts.nationalities)}; US person: {facts.us_person.value}; "
        f"verified until {facts.expires.isoformat()}"
    )


@licences_app.command("add")
def licences_add(
    org: Annotated[str, typer.Option("--org")],
    model: Annotated[str, typer.Option("--model", metavar="ID")],
    nationality: Annotated[list[str], typer.Option("--nationality", metavar="CC")],
    number: Annotated[str, typer.Option("--number", metavar="TEXT")],
    expires: Annotated[str, typer.Option("--expires", metavar="YYYY-MM-DD")],
    authority: Annotated[
        str, typer.Option("--authority", metavar="TEXT", help="The issuing authority.")
    ] = "BIS",
    config: ConfigOption = None,
) -> None:
    """Record a deemed-export licence covering MODEL for the given nationalities."""
    until = parse_date(expires, "--expires")
    assert until is not None
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            lic = service.add_licence(
                conn,
                org=org,
                model_id=model,
                nationalities=nationality,
                number=number,
                expires=until,
                authority=authority,
            )
        rt.record(
            "licence.add",
            f"org:{lic.org_id}",
            {
                "licence_id": lic.id,
                "model": lic.model_id,
                "nationalities": sorted(lic.nationalities),
                "number": lic.number,
                "authority": lic.authority,
                "expires": lic.expires.isoformat(),
            },
        )
    typer.echo(f"licence {lic.number} for {org}: {model} / {', '.join(sorted(lic.nationalities))}")


@users_app.command("show")
def users_show(email: str, as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """A user's stored facts (--json: the operator API's shape)."""
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        user = service.get_user(conn, email)
    data = user_json(user)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    for field, value in data.items():
        if field != "identity":
            typer.echo(f"{field}: {'-' if value is None else value}")
    ident = user.identity
    typer.echo(
        "identity: -"
        if ident is None
        else f"identity: {', '.join(ident.nationalities)}; US person: {ident.us_person.value}; "
        f"verified until {ident.expires.isoformat()}"
    )
