"""`clearance orgs owners add|list|remove|import`: an organisation's declared owners (KYB). Each
change is an audit entry and screens ownership again at once (screening/ownership.py).
`clearance orgs admins add|remove|list`: the members who may declare them in the portal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import Engine

from clearance.cli.context import ConfigOption, JsonOption, open_runtime, operator
from clearance.cli.principals import orgs_app
from clearance.errors import InvalidInput
from clearance.principals import directory, org_admins, owner_import, owners, views
from clearance.principals.ownership_files import FORMATS
from clearance.screening.service import build_matcher, rescreen_ownership
from clearance.screening.settings import thresholds
from clearance.store import reading

owners_app = typer.Typer(help="An organisation's declared owners (KYB).", no_args_is_help=True)
admins_app = typer.Typer(
    help="The members who may declare the organisation's KYB details and owners in the portal.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """`owners` attaches to the `orgs` group `clearance.cli.principals` registers."""
    del app
    orgs_app.add_typer(owners_app, name="owners")
    orgs_app.add_typer(admins_app, name="admins")


@owners_app.command("add")
def owners_add(
    org: str,
    percent: Annotated[float, typer.Option("--percent", help="the direct share, 0 to 100")],
    person: Annotated[str | None, typer.Option("--person", metavar="NAME")] = None,
    entity: Annotated[str | None, typer.Option("--entity", metavar="NAME")] = None,
    owner_org: Annotated[str | None, typer.Option("--org", metavar="ORG")] = None,
    country: Annotated[str | None, typer.Option("--country", metavar="CC")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Declare a direct owner: --person NAME, --entity NAME or --org ORG, with its --percent."""
    chosen = [(k, v) for k, v in (("person", person), ("entity", entity), ("org", owner_org)) if v]
    if len(chosen) != 1:
        raise typer.BadParameter("give exactly one of --person, --entity or --org")
    kind, name = chosen[0]
    outbox: list[bytes] = []
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            owner = owners.add_owner(
                conn, org, kind=kind, name=name, percent=percent, country_code=country,
                actor=operator(),
            )  # fmt: skip
            matcher = build_matcher(conn, thresholds(rt.settings))
            rescreen_ownership(conn, matcher, outbox=outbox)
        index = rt.record(
            "org.owner.add",
            f"org_owner:{owner.id}",
            {"org": owner.org, "kind": kind, "percent": percent, "country": owner.country},
        )
        rt.append(outbox)
        status = _status(rt.engine, org)
    if as_json:
        typer.echo(json.dumps({**owner.as_json(), "audit_index": index, **status}))
        return
    typer.echo(
        f"owner {owner.id} of {owner.org}: {owner.kind} {owner.name} {percent:g} % (audit entry"
        f" {index}); ownership: {status['ownership_status']},"
        f" listed owners {status['listed_owner_share']:g} %"
    )


@owners_app.command("import")
def owners_import(
    org: str,
    file: Annotated[Path, typer.Argument(metavar="FILE")],
    fmt: Annotated[str, typer.Option("--format", help="ftm (FollowTheMoney JSON lines) or bods")],
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Import ORG's ownership from a FollowTheMoney or BODS 0.4 file, in one transaction: it
    replaces ORG's previous import; a bad record refuses the whole file, naming it."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format is one of {', '.join(FORMATS)}")
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror}") from exc
    outbox: list[bytes] = []
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            done = owner_import.import_owners(conn, org, fmt, file.name, data, actor=operator())
            rescreen_ownership(conn, build_matcher(conn, thresholds(rt.settings)), outbox=outbox)
        index = rt.record(
            "org.owner.import", f"ownership_import:{done.import_id}", done.audit_details()
        )
        rt.append(outbox)
        status = _status(rt.engine, done.org)
    if as_json:
        typer.echo(json.dumps({**done.as_json(), "audit_index": index, **status}))
        return
    skipped = "; ".join(f"{k}: {v}" for k, v in done.skipped.items()) or "nothing"
    typer.echo(
        f"imported {file.name} (sha256 {done.sha256[:12]}) for {done.org}: {done.owners} owners,"
        f" {done.holdings} holdings up the chain, skipped {skipped} (audit entry {index});"
        f" ownership: {status['ownership_status']}, listed owners"
        f" {status['listed_owner_share']:g} %"
    )


@owners_app.command("list")
def owners_list(org: str, as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """The declared owners, each with who declared it and when."""
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        found = owners.list_owners(conn, org)
    if as_json:
        typer.echo(json.dumps({"org": org, "owners": [o.as_json() for o in found]}))
        return
    for o in found:
        typer.echo(f"{o.id}\t{o.kind}\t{o.name}\t{o.percent:g} %\t{o.country or '-'}")


@owners_app.command("remove")
def owners_remove(
    org: str,
    owner_id: int,
    reason: Annotated[str, typer.Option("--reason")] = "",
    config: ConfigOption = None,
) -> None:
    """Remove a declared owner; ownership is screened again at once."""
    outbox: list[bytes] = []
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            owner = owners.remove_owner(conn, org, owner_id)
            rescreen_ownership(conn, build_matcher(conn, thresholds(rt.settings)), outbox=outbox)
        index = rt.record(
            "org.owner.remove",
            f"org_owner:{owner.id}",
            {"org": owner.org, "kind": owner.kind, "percent": owner.percent, "reason": reason},
        )
        rt.append(outbox)
    typer.echo(f"owner {owner.id} of {owner.org} removed (audit entry {index})")


@admins_app.command("add")
def admins_add(
    org: str, email: str, as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """Let a member of ORG declare its KYB details and owners in the portal (/portal/org)."""
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            admin = org_admins.grant(conn, org, email, actor=operator())
        index = rt.record(
            "org.admin.grant", f"org:{admin.org}", {"org": admin.org}, subject=admin.subject_id
        )
    if as_json:
        typer.echo(json.dumps({**admin.as_json(), "audit_index": index}))
        return
    typer.echo(f"{admin.email} is an admin of {admin.org} (audit entry {index})")


@admins_app.command("remove")
def admins_remove(
    org: str,
    email: str,
    reason: Annotated[str, typer.Option("--reason")] = "",
    config: ConfigOption = None,
) -> None:
    """Take the role back; the next page the person opens refuses them."""
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            admin = org_admins.revoke(conn, org, email)
        index = rt.record(
            "org.admin.revoke",
            f"org:{admin.org}",
            {"org": admin.org, "reason": reason},
            subject=admin.subject_id,
        )
    typer.echo(f"{admin.email} is no longer an admin of {admin.org} (audit entry {index})")


@admins_app.command("list")
def admins_list(org: str, as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """ORG's admins, who granted each and when."""
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        found = org_admins.list_admins(conn, org)
    if as_json:
        typer.echo(json.dumps({"org": org, "admins": [a.as_json() for a in found]}))
        return
    for a in found:
        typer.echo(f"{a.email}\t{a.granted_by}\t{a.granted_at:%Y-%m-%d %H:%M}")


def _status(engine: Engine, org: str) -> dict[str, object]:
    with reading(engine) as conn:
        data = views.org_json(directory.get_org(conn, org), 0)
    return {k: data[k] for k in ("screening_status", "ownership_status", "listed_owner_share")}
