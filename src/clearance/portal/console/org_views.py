"""One organisation in the console: what an operator checks before deciding about it.

GET /orgs/{id}?after=CURSOR   the organisation: country and know-your-business details, its
                              name screening and ownership screening (status, the listed owners'
                              share, the rule, the path of listed owners), its declared owners,
                              its admins, its members (50 a page, linking their pages), links to
                              its keys and licences (viewer; audited `org.view`, as the operator
                              API's GET /orgs/{org} records it)

Read only. The changes are the CLI's (`clearance orgs update|owners|admins`) and the portal's
organisation page for its admins. An organisation's screening hits have no decision here:
`screening.service.screen_org` keeps the status of its name screening, not the list entries it
matched, and `resolve` (`clearance lists resolve`) decides people's hits only, so the page
shows the status and the ownership path read only and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import Response

from clearance.errors import NotFound
from clearance.portal.console.context import Console, FieldError
from clearance.portal.operators import VIEWER
from clearance.principals import directory, org_admins, owners
from clearance.principals.directory import KYB_FIELDS, Page, PageRequest
from clearance.principals.models import Org, User
from clearance.principals.org_admins import OrgAdmin
from clearance.principals.owners import Owner

PAGE = 50


@dataclass(frozen=True, slots=True)
class Record:
    org: Org
    members: Page[User]
    count: int
    owners: tuple[Owner, ...]
    admins: tuple[OrgAdmin, ...]


class OrgViews:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def org(self, request: Request) -> Response:
        signed = await self.console.require(request, VIEWER)
        org_id: int = request.path_params["org"]
        if not 0 < org_id < 2**31:  # ids are 32-bit: PostgreSQL would refuse the query
            raise NotFound(f"unknown organisation {org_id}")
        after = request.query_params.get("after") or None
        if after is not None and not (after.isascii() and after.isdigit() and len(after) < 12):
            raise FieldError("after", "not a cursor from this list")

        def run(conn: Connection) -> Record:
            org = directory.get_org_by_id(conn, org_id)
            return Record(
                org,
                directory.members(conn, org.name, PageRequest(limit=PAGE, after=after)),
                directory.member_count(conn, org.id),
                tuple(owners.list_owners(conn, org.name)),
                tuple(org_admins.list_admins(conn, org.name)),
            )

        record = await self.console.portal.db(run)
        # The page names its members: a look at people, recorded as the operator API does.
        await self.console.record(signed, "org.view", f"org:{record.org.id}", {})
        return self.console.page(request, "org.html", record=record, kyb_fields=KYB_FIELDS)
