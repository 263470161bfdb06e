"""Listing, searching and changing people, organisations, keys and licences:
`clearance users list|search|suspend|reinstate|erase`, `orgs list|show|update|members`,
`keys list`, `licences list|show|revoke|expire|renew`. Each --json output is the operator API's
shape for the same thing (principals.views)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, cast

import typer

from clearance.audit.service import AuditLog
from clearance.cli.context import ConfigOption, JsonOption, Runtime, open_runtime, operator
from clearance.cli.principals import keys_app, licences_app, orgs_app, parse_date, users_app
from clearance.identity import service as identity
from clearance.identity.vault import EvidenceVault
from clearance.principals import directory, licences, views
from clearance.principals import service as principals
from clearance.principals.directory import PageRequest
from clearance.screening.service import screen_org
from clearance.store import reading

Limit = Annotated[int, typer.Option("--limit", min=1, max=directory.MAX_LIMIT)]
Offset = Annotated[int, typer.Option("--offset", min=0)]
After = Annotated[
    str | None, typer.Option("--after", metavar="CURSOR", help="The `next` of the last page.")
]
Reason = Annotated[str, typer.Option("--reason", metavar="TEXT")]
OrgFilter = Annotated[str | None, typer.Option("--org", metavar="ORG")]


def register(app: typer.Typer) -> None:
    """The commands attach to the groups `clearance.cli.principals` registers."""
    del app


def _emit(data: Mapping[str, object], as_json: bool, lines: list[str]) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    for line in lines:
        typer.echo(line)
    if data.get("next"):
        typer.echo(f"(more: --after {data['next']})")


def _items(data: Mapping[str, object], name: str) -> list[Mapping[str, Any]]:
    return cast("list[Mapping[str, Any]]", data[name])


def _user_lines(data: Mapping[str, object]) -> list[str]:
    out = []
    for u in _items(data, "users"):
        out.append(f"{u['email']}\t{u['subject_id']}\t{u['org'] or '-'}\t{u['status']}")
    return out


# -- users ----------------------------------------------------------------------------------


@users_app.command("list")
def users_list(
    search: Annotated[str | None, typer.Option("--search", metavar="TEXT")] = None,
    org: OrgFilter = None,
    limit: Limit = 50,
    offset: Offset = 0,
    after: After = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """People, by id; --search matches part of an email or name."""
    page = PageRequest(limit, offset, after)
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        data = views.users_json(directory.list_users(conn, page, search=search, org=org))
    _emit(data, as_json, _user_lines(data))


@users_app.command("search")
def users_search(
    text: str,
    org: OrgFilter = None,
    limit: Limit = 50,
    offset: Offset = 0,
    after: After = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """People whose email or name contains TEXT (any case)."""
    users_list(text, org, limit, offset, after, as_json, config)


@users_app.command("suspend")
def users_suspend(email: str, reason: Reason, config: ConfigOption = None) -> None:
    """Refuse a person every model, on every worker within a poll, until reinstated."""
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            user = directory.suspend_user(conn, email, reason)
        index = _record(rt, "user.suspend", user.subject_id, {"reason": reason.strip()})
    typer.echo(f"user {user.email} suspended (audit entry {index})")


@users_app.command("reinstate")
def users_reinstate(email: str, reason: Reason, config: ConfigOption = None) -> None:
    """Lift a suspension."""
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            user = directory.reinstate_user(conn, email, reason)
        index = _record(rt, "user.reinstate", user.subject_id, {"reason": reason.strip()})
    typer.echo(f"user {user.email} reinstated (audit entry {index})")


@users_app.command("erase")
def users_erase(email: str, reason: Reason, config: ConfigOption = None) -> None:
    """Erase a person's identity evidence (every image) on request. The account, identity
    facts, decisions and audit entries stay: they are export records (15 CFR 762.6). Refused
    whole while a legal hold covers the person, their org or a case (`clearance audit hold`)."""
    if not reason.strip():
        raise typer.BadParameter("a --reason is required", param_hint="--reason")
    with open_runtime(config) as rt:
        vault = EvidenceVault.open(rt.settings.identity)
        log = AuditLog(rt.engine, rt.settings.audit)
        try:
            with reading(rt.engine) as conn:
                user = principals.get_user(conn, email)
            count = identity.erase_evidence(rt.engine, vault, log, user.id, actor=operator())
        finally:
            log.close()
        index = _record(
            rt, "user.erase", user.subject_id, {"reason": reason.strip(), "files": count}
        )
        years = rt.settings.retention.export_records_years
    typer.echo(f"erased {count} evidence files of {email} (audit entry {index})")
    typer.echo(
        "kept: the account, identity facts, decisions and audit entries "
        f"(export records, 15 CFR 762.6, at least {years} years)"
    )


def _record(rt: Runtime, action: str, subject: str, details: Mapping[str, object]) -> int:
    return rt.record(action, subject, details, subject=subject)


# -- orgs -----------------------------------------------------------------------------------


@orgs_app.command("list")
def orgs_list(
    limit: Limit = 50,
    offset: Offset = 0,
    after: After = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Organisations, by id, with their member counts."""
    page = PageRequest(limit, offset, after)
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        found = directory.list_orgs(conn, page)
        data = views.page_json(
            "orgs", found, lambda o: views.org_json(o, directory.member_count(conn, o.id))
        )
    lines = [
        f"{o['id']}\t{o['name']}\t{o['country'] or '-'}\t{o['screening']}\t{o['members']}"
        for o in _items(data, "orgs")
    ]
    _emit(data, as_json, lines)


@orgs_app.command("show")
def orgs_show(org: str, as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """An organisation and its first members (`orgs members` pages through all of them)."""
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        data = views.org_detail_json(*directory.org_detail(conn, org))
    lines = [f"{data['name']} (id {data['id']}, {data['country'] or '-'}): {data['screening']}"]
    lines += [f"  {u['email']}\t{u['status']}" for u in _items(data, "member_list")]
    _emit(data, as_json, lines)


@orgs_app.command("members")
def orgs_members(
    org: str,
    limit: Limit = 50,
    offset: Offset = 0,
    after: After = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """An organisation's members, by id."""
    page = PageRequest(limit, offset, after)
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        data = views.users_json(directory.members(conn, org, page))
    _emit(data, as_json, _user_lines(data))


@orgs_app.command("update")
def orgs_update(
    org: str,
    name: Annotated[str | None, typer.Option("--name")] = None,
    country: Annotated[str | None, typer.Option("--country", metavar="CC")] = None,
    legal_name: Annotated[str | None, typer.Option("--legal-name")] = None,
    registration_number: Annotated[str | None, typer.Option("--registration-number")] = None,
    registry: Annotated[str | None, typer.Option("--registry")] = None,
    incorporation_country: Annotated[
        str | None, typer.Option("--incorporation-country", metavar="CC")
    ] = None,
    headquarters_country: Annotated[
        str | None, typer.Option("--headquarters-country", metavar="CC")
    ] = None,
    ultimate_parent: Annotated[str | None, typer.Option("--ultimate-parent")] = None,
    ultimate_parent_country: Annotated[
        str | None, typer.Option("--ultimate-parent-country", metavar="CC")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Rename an organisation, change its country or its KYB details (legal name, registration,
    incorporation and headquarters countries, ultimate parent); it is screened again at once."""
    given = {
        "legal_name": legal_name,
        "registration_number": registration_number,
        "registry": registry,
        "incorporation_country": incorporation_country,
        "headquarters_country": headquarters_country,
        "ultimate_parent": ultimate_parent,
        "ultimate_parent_country": ultimate_parent_country,
    }
    kyb = {k: v for k, v in given.items() if v is not None}
    outbox: list[bytes] = []
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            rec, changes = directory.update_org(
                conn, org, new_name=name, new_country=country, kyb=kyb
            )
            screening = screen_org(conn, rec.id, outbox=outbox)
        index = rt.record("org.update", f"org:{rec.id}", changes)
        rt.append(outbox)
    typer.echo(
        f"organisation {rec.name} updated (audit entry {index}); "
        f"screening: {screening.status.value}"
    )


# -- keys -----------------------------------------------------------------------------------


@keys_app.command("list")
def keys_list(
    user: Annotated[str | None, typer.Option("--user", metavar="EMAIL")] = None,
    org: OrgFilter = None,
    limit: Limit = 50,
    offset: Offset = 0,
    after: After = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """API keys (never their secrets), by id; for one person or one organisation's members."""
    page = PageRequest(limit, offset, after)
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        data = views.page_json(
            "keys", directory.list_keys(conn, page, user=user, org=org), views.key_json
        )
    lines = [
        f"{k['id']}\t...{k['hint']}\t{k['owner']}\t{k['status']}\t"
        f"expires {k['expires_at'] or 'never'}"
        for k in _items(data, "keys")
    ]
    _emit(data, as_json, lines)


# -- licences -------------------------------------------------------------------------------


@licences_app.command("list")
def licences_list(
    org: OrgFilter = None,
    limit: Limit = 50,
    offset: Offset = 0,
    after: After = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Licences, by id: number, authority, holder, models, nationalities, expiry, status."""
    page = PageRequest(limit, offset, after)
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        data = views.page_json(
            "licences", licences.list_licences(conn, page, org=org), views.licence_json
        )
    _emit(data, as_json, [_licence_line(x) for x in _items(data, "licences")])


def _licence_line(x: Mapping[str, Any]) -> str:
    return (
        f"{x['id']}\t{x['number']} ({x['authority']})\t{x['org']}\t"
        f"{','.join(x['models'])}\t{','.join(x['nationalities'])}\t"
        f"until {x['expires']}\t{x['status']}"
    )


LicenceId = Annotated[int, typer.Argument(metavar="ID", min=1)]


@licences_app.command("show")
def licences_show(
    licence: LicenceId, as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """One licence."""
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        data = views.licence_json(licences.get_licence(conn, licence))
    _emit(data, as_json, [_licence_line(data)])


def _licence_change(rt: Runtime, action: str, held: licences.HeldLicence, **details: object) -> int:
    lic = held.licence
    return rt.record(
        action, f"org:{lic.org_id}", {"licence_id": lic.id, "number": lic.number, **details}
    )


@licences_app.command("revoke")
def licences_revoke(licence: LicenceId, reason: Reason, config: ConfigOption = None) -> None:
    """The authority revoked it: it stops covering anyone at once (kept as a record)."""
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            held = licences.revoke(conn, licence, reason)
        index = _licence_change(rt, "licence.revoke", held, reason=reason.strip())
    typer.echo(f"licence {held.licence.number} revoked (audit entry {index})")


@licences_app.command("expire")
def licences_expire(licence: LicenceId, config: ConfigOption = None) -> None:
    """End a licence now (it expired yesterday)."""
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            held = licences.expire(conn, licence)
        index = _licence_change(
            rt, "licence.expire", held, expires=held.licence.expires.isoformat()
        )
    typer.echo(f"licence {held.licence.number} expired (audit entry {index})")


@licences_app.command("renew")
def licences_renew(
    licence: LicenceId,
    until: Annotated[str, typer.Option("--until", metavar="YYYY-MM-DD")],
    config: ConfigOption = None,
) -> None:
    """Extend (or shorten) a licence's validity to a new date."""
    day = parse_date(until, "--until")
    assert day is not None
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            held = licences.renew(conn, licence, day)
        index = _licence_change(rt, "licence.renew", held, expires=day.isoformat())
    typer.echo(f"licence {held.licence.number} runs until {day.isoformat()} (audit entry {index})")
