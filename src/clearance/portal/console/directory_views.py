"""Organisations and licences in the console.

GET  /orgs?after=CURSOR                organisations: country, screening (name and ownership),
                                       members                                         viewer
GET  /licences?org=NAME&after=CURSOR   deemed-export licences: number, authority, holder, model,
                                       nationalities, expiry, state                    viewer
POST /licences/{id}/revoke             `reason`: the licence stops covering anyone at once
                                       (the licensed fall back or are refused)         operator
POST /licences/{id}/expire             `expires` (the expiry the page showed), `reason`: it
                                       ends now (expired yesterday)                    operator
POST /licences/{id}/renew              `expires`, `until` (YYYY-MM-DD, today or later),
                                       `reason`: it runs until the new date           operator

The changes are `principals.licences.revoke|expire|renew`, recorded as `licence.revoke|expire|
renew` on the holder (`org:<id>`) with the licence's id and number, as `clearance licences ...`
and the operator API record them, with the reason (which the CLI asks of a revocation only: in
the console every change asks for one). Expiring and renewing carry the expiry the page showed:
a licence changed since (renewed or revoked in another tab, by the CLI) is 409.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from sqlalchemy.engine import Connection
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clearance.errors import InvalidInput, NotFound
from clearance.portal.console.context import (
    Console,
    FieldError,
    Signed,
    done_params,
    reason,
    text,
)
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
        licence_id = _licence_id(request)

        def run(conn: Connection) -> HeldLicence:
            return licences.revoke(conn, licence_id, why)

        held = await self.console.portal.db(run, write=True)
        return await self._recorded(request, signed, "revoke", held, reason=why)

    async def expire(self, request: Request) -> Response:
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        why, shown = reason(form), _date(form, "expires")
        licence_id = _licence_id(request)
        held = await self._change(licence_id, shown, lambda c: licences.expire(c, licence_id))
        expires = held.licence.expires.isoformat()
        return await self._recorded(request, signed, "expire", held, expires=expires, reason=why)

    async def renew(self, request: Request) -> Response:
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        why, shown, until = reason(form), _date(form, "expires"), _date(form, "until")
        licence_id = _licence_id(request)

        def run(conn: Connection) -> HeldLicence:
            try:
                return licences.renew(conn, licence_id, until)
            except InvalidInput as exc:  # every refusal of renew() is about the new date
                raise FieldError("until", exc.detail.removeprefix("--until ")) from exc

        held = await self._change(licence_id, shown, run)
        expires = until.isoformat()
        return await self._recorded(request, signed, "renew", held, expires=expires, reason=why)

    async def _change(
        self, licence_id: int, shown: date, change: Callable[[Connection], HeldLicence]
    ) -> HeldLicence:
        """`change` on the licence as the page showed it (else 409), in one transaction."""

        def run(conn: Connection) -> HeldLicence:
            licences.check_unchanged(conn, licence_id, shown)
            return change(conn)

        return await self.console.portal.db(run, write=True)

    async def _recorded(
        self, request: Request, signed: Signed, verb: str, held: HeldLicence, **details: object
    ) -> Response:
        """The CLI's entry (`licence.VERB` on the holder), then the list showing its index."""
        lic = held.licence
        index = await self.console.record(
            signed,
            f"licence.{verb}",
            f"org:{lic.org_id}",
            {"licence_id": lic.id, "number": lic.number, **details},
        )
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}/licences?done={index}&action={verb}", status_code=303)


def _licence_id(request: Request) -> int:
    licence_id: int = request.path_params["licence"]
    if not 0 < licence_id < 2**31:  # ids are 32-bit: PostgreSQL would refuse the query
        raise NotFound(f"unknown licence {licence_id}")
    return licence_id


def _date(form: FormData, field: str) -> date:
    value = text(form, field, limit=10)
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise FieldError(field, "a date, YYYY-MM-DD") from exc
