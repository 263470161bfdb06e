"""Organisations and licences in the console.

GET  /orgs?after=CURSOR                organisations: country, screening (name and ownership),
                                       members                                         viewer
GET  /licences?org=NAME&after=CURSOR   deemed-export licences: number, authority, holder, model,
                                       nationalities, expiry, state                    viewer
POST /licences/{id}/revoke             `reason`: the licence stops covering anyone at once
                                       (the licensed fall back or are refused)         operator

The revocation is `principals.licences.revoke`, recorded as `licence.revoke` on the holder
(`org:<id>`) with the licence's id and number, as the operator API records it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clearance.errors import NotFound
from clearance.portal.console.context import Console, FieldError, done_params, reason
from clearance.portal.operators import OPERATOR, VIEWER
from clearance.principals import directory, licences
from clearance.principals.directory import Page, PageRequest
from clearance.principals.licences import HeldLicence
from clearance.principals.models import Org

PAGE = 50


def _cursor(request: Request) -> str | None:
    after = request.query_params.get("after") or None
    if after is not None and not (after.isascii() and after.isdigit() and len(after) < 12):
        raise FieldError("after", "not a cursor from this list")
    return after


class DirectoryViews:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def orgs(self, request: Request) -> Response:
        await self.console.require(request, VIEWER)
        page = PageRequest(limit=PAGE, after=_cursor(request))

        def run(conn: Connection) -> tuple[Page[Org], dict[int, int]]:
            found = directory.list_orgs(conn, page)
            return found, {o.id: directory.member_count(conn, o.id) for o in found.items}

        found, members = await self.console.portal.db(run)
        return self.console.page(request, "orgs.html", found=found, members=members)

    async def licences(self, request: Request) -> Response:
        signed = await self.console.require(request, VIEWER)
        org = request.query_params.get("org", "").strip() or None
        if org is not None and len(org) > 200:
            raise FieldError("org", "at most 200 characters")
        page = PageRequest(limit=PAGE, after=_cursor(request))

        def run(conn: Connection) -> Page[HeldLicence]:
            return licences.list_licences(conn, page, org=org)

        found = await self.console.portal.db(run)
        index, action = done_params(request)
        return self.console.page(
            request,
            "licences.html",
            found=found,
            org=org,
            can_change=signed.can(OPERATOR),
            today=datetime.now(UTC).date(),
            done=index,
            action=action,
        )

    async def revoke(self, request: Request) -> Response:
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        why = reason(form)
        licence_id: int = request.path_params["licence"]
        if not 0 < licence_id < 2**31:  # ids are 32-bit: PostgreSQL would refuse the query
            raise NotFound(f"unknown licence {licence_id}")

        def run(conn: Connection) -> HeldLicence:
            return licences.revoke(conn, licence_id, why)

        held = await self.console.portal.db(run, write=True)
        lic = held.licence
        index = await self.console.record(
            signed,
            "licence.revoke",
            f"org:{lic.org_id}",
            {"licence_id": lic.id, "number": lic.number, "reason": why},
        )
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}/licences?done={index}&action=revoke", status_code=303)
