"""One organisation in the console: what an operator checks before deciding about it.

GET /orgs/{id}?after=CURSOR   the organisation: country and know-your-business details, its
                              name screening (status, its current hits, each decided or not, and
                              a link to decide them on /screening?org=ID) and ownership screening
                              (status, the listed owners' share, the rule, the path of listed
                              owners), its declared owners,
                              its admins, its members (50 a page, linking their pages), links to
                              its keys and licences (viewer; audited `org.view`, as the operator
                              API's GET /orgs/{org} records it)
POST /orgs/{id}/update        `name`, `country`, the KYB details (blank: not declared), `version`
                              (the organisation as the page showed it), `reason`       operator

The change is `principals.directory.update_org`, then the organisation screened again at once
(`screening.service.screen_org`), as `clearance orgs update` and the operator API make it: the
`org.update` entry with the changes (and the reason), then a `screening_decision` if its status
changed. An organisation changed since the page was rendered is 409. Its owners and admins are
changed from the CLI (`clearance orgs owners|admins`) and the portal's organisation page.
Its name screening hits are decided on the screening page (screening_views.py), beside people's;
its ownership status follows its declared owners and has no decision of its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clearance.errors import Conflict, InvalidInput, NotFound
from clearance.portal.console.context import Console, FieldError, done_params, reason, text
from clearance.portal.operators import OPERATOR, VIEWER
from clearance.principals import directory, org_admins, owners
from clearance.principals.countries import country
from clearance.principals.directory import KYB_FIELDS, Page, PageRequest
from clearance.principals.models import Org, User
from clearance.principals.org_admins import OrgAdmin
from clearance.principals.owners import Owner
from clearance.screening import hits
from clearance.screening.hits import Holder, StoredHit
from clearance.screening.service import screen_org
from clearance.store.tables import orgs

PAGE = 50


@dataclass(frozen=True, slots=True)
class Record:
    org: Org
    members: Page[User]
    count: int
    owners: tuple[Owner, ...]
    admins: tuple[OrgAdmin, ...]
    hits: tuple[StoredHit, ...]  # its name screening's current hits
    decided: dict[tuple[str, str], str]  # (list, entry) -> a resolution that still holds


class OrgViews:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def org(self, request: Request) -> Response:
        signed = await self.console.require(request, VIEWER)
        org_id = _org_id(request)
        after = request.query_params.get("after") or None
        if after is not None and not (after.isascii() and after.isdigit() and len(after) < 12):
            raise FieldError("after", "not a cursor from this list")

        def run(conn: Connection) -> Record:
            org = directory.get_org_by_id(conn, org_id)
            found = tuple(hits.for_org(conn, org.id))
            resolutions = hits.resolutions(conn, org.id, Holder.ORG)
            return Record(
                org,
                directory.members(conn, org.name, PageRequest(limit=PAGE, after=after)),
                directory.member_count(conn, org.id),
                tuple(owners.list_owners(conn, org.name)),
                tuple(org_admins.list_admins(conn, org.name)),
                found,
                {
                    (h.list_name, h.entry_id): decided[0]
                    for h in found
                    if (decided := resolutions.get((h.list_name, h.entry_id))) is not None
                    and decided[1] == h.entry_hash
                },
            )

        record = await self.console.portal.db(run)
        # The page names its members: a look at people, recorded as the operator API does.
        await self.console.record(signed, "org.view", f"org:{record.org.id}", {})
        index, action = done_params(request)
        return self.console.page(
            request,
            "org.html",
            record=record,
            kyb_fields=KYB_FIELDS,
            version=org_version(record.org),
            can_change=signed.can(OPERATOR),
            done=index,
            action=action,
        )

    async def update(self, request: Request) -> Response:
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        org_id, why = _org_id(request), reason(form)
        version = text(form, "version", limit=64)
        name = text(form, "name", limit=200)
        new_country = _country(form, "country") or None  # blank: unchanged (never cleared)
        kyb = {
            f: _country(form, f)
            if f.endswith("_country")
            else text(form, f, required=False, limit=400)
            for f in KYB_FIELDS
        }
        outbox: list[bytes] = []

        def run(conn: Connection) -> tuple[int, dict[str, object]]:
            conn.execute(sa.select(orgs.c.id).where(orgs.c.id == org_id).with_for_update())
            current = directory.get_org_by_id(conn, org_id)
            if org_version(current) != version:
                raise Conflict(
                    f"organisation {current.name!r} was changed since you opened it: reload it"
                )
            org, changes = directory.update_org(
                conn, current.name, new_name=name, new_country=new_country, kyb=kyb
            )
            screen_org(conn, org.id, outbox=outbox)
            return org.id, changes

        changed_id, changes = await self.console.portal.db(run, write=True)
        index = await self.console.record(
            signed, "org.update", f"org:{changed_id}", {**changes, "reason": why}
        )
        for entry in outbox:  # the screening decision follows the change, as in the CLI
            await self.console.portal.audit.append_async(entry)
        root = request.scope.get("root_path", "")
        location = f"{root}/orgs/{changed_id}?done={index}&action=update"
        return RedirectResponse(location, status_code=303)


def org_version(org: Org) -> str:
    """A digest of the organisation as stored: the form carries it (no last write wins)."""
    return hashlib.sha256(repr(org).encode()).hexdigest()[:20]


def _org_id(request: Request) -> int:
    org_id: int = request.path_params["org"]
    if not 0 < org_id < 2**31:  # ids are 32-bit: PostgreSQL would refuse the query
        raise NotFound(f"unknown organisation {org_id}")
    return org_id


def _country(form: FormData, field: str) -> str:
    """A country code, checked as the directory checks it; blank stays blank."""
    value = text(form, field, required=False, limit=8)
    try:
        return country(value) if value else ""
    except InvalidInput as exc:
        raise FieldError(field, "an ISO 3166-1 alpha-2 country code, like SE") from exc
