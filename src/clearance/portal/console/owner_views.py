"""An organisation's declared owners and its admins, changed from its console page.

POST /orgs/{id}/owners/add             `kind` person|entity|org, `name`, `percent` (0 to 100],
                                       `country`?, `reason`                         operator
POST /orgs/{id}/owners/{owner}/remove  `reason`                                     operator
POST /orgs/{id}/admins/grant           `email` (a member), `reason`                 operator
POST /orgs/{id}/admins/revoke          `email`, `reason`                            operator

The changes are `principals.owners.add_owner|remove_owner` (ownership screened again at once,
`screening.service.rescreen_ownership`) and `principals.org_admins.grant|revoke`, as `clearance
orgs owners add|remove` and `orgs admins add|remove` make them, with their entries
(`org.owner.add|remove`, `org.admin.grant|revoke`) and the reason. An owner removed since the
page was rendered is 404; the share checks (a total over 100 %, a cycle) are the directory's.
"""

from __future__ import annotations

import math

from sqlalchemy.engine import Connection
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clearance.errors import InvalidInput, NotFound
from clearance.portal.console.context import Console, FieldError, Signed, reason, text
from clearance.portal.operators import OPERATOR
from clearance.principals import directory, org_admins, owners
from clearance.principals.countries import country as country_code
from clearance.principals.models import Org
from clearance.screening.service import build_matcher, rescreen_ownership
from clearance.screening.settings import thresholds

KINDS = ("person", "entity", "org")


class OwnerViews:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def add_owner(self, request: Request) -> Response:
        signed, org, form = await self._begin(request)
        why = reason(form)
        kind = text(form, "kind", limit=16)
        if kind not in KINDS:
            raise FieldError("kind", "choose person, entity or org")
        name = text(form, "name", limit=400)
        try:
            percent = float(text(form, "percent", limit=16))
        except ValueError:
            percent = math.nan
        if not (math.isfinite(percent) and 0 < percent <= 100):
            raise FieldError("percent", "a share above 0 and at most 100")
        country = text(form, "country", required=False, limit=8) or None
        try:
            country = country_code(country) if country else None
        except InvalidInput as exc:
            raise FieldError("country", "an ISO 3166-1 alpha-2 country code, like SE") from exc
        outbox: list[bytes] = []

        def run(conn: Connection) -> owners.Owner:
            owner = owners.add_owner(
                conn, org.name, kind=kind, name=name, percent=percent, country_code=country,
                actor=signed.actor,
            )  # fmt: skip
            self._rescreen(conn, outbox)
            return owner

        owner = await self.console.portal.db(run, write=True)
        details = {"org": org.name, "kind": kind, "percent": percent, "country": owner.country}
        return await self._done(
            request, signed, org, "org.owner.add", f"org_owner:{owner.id}", details, why, outbox
        )

    async def remove_owner(self, request: Request) -> Response:
        signed, org, form = await self._begin(request)
        why = reason(form)
        owner_id: int = request.path_params["owner"]
        if not 0 < owner_id < 2**31:
            raise NotFound(f"{org.name!r} has no declared owner {owner_id}")
        outbox: list[bytes] = []

        def run(conn: Connection) -> owners.Owner:
            owner = owners.remove_owner(conn, org.name, owner_id)
            self._rescreen(conn, outbox)
            return owner

        owner = await self.console.portal.db(run, write=True)
        details = {"org": org.name, "kind": owner.kind, "percent": owner.percent}
        return await self._done(
            request, signed, org, "org.owner.remove", f"org_owner:{owner.id}", details, why, outbox
        )

    async def grant_admin(self, request: Request) -> Response:
        return await self._admin(request, "grant")

    async def revoke_admin(self, request: Request) -> Response:
        return await self._admin(request, "revoke")

    async def _admin(self, request: Request, verb: str) -> Response:
        signed, org, form = await self._begin(request)
        why = reason(form)
        email = text(form, "email", limit=320)

        def run(conn: Connection) -> org_admins.OrgAdmin:
            if verb == "grant":
                return org_admins.grant(conn, org.name, email, actor=signed.actor)
            return org_admins.revoke(conn, org.name, email)

        admin = await self.console.portal.db(run, write=True)
        index = await self.console.record(
            signed,
            f"org.admin.{verb}",
            f"org:{admin.org}",
            {"org": admin.org, "reason": why},
            subject=admin.subject_id,
        )
        return _back(request, org, index, verb)

    async def _begin(self, request: Request) -> tuple[Signed, Org, FormData]:
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        org_id: int = request.path_params["org"]
        if not 0 < org_id < 2**31:
            raise NotFound(f"unknown organisation {org_id}")
        org = await self.console.portal.db(lambda c: directory.get_org_by_id(c, org_id))
        return signed, org, form

    def _rescreen(self, conn: Connection, outbox: list[bytes]) -> None:
        matcher = build_matcher(conn, thresholds(self.console.portal.settings))
        rescreen_ownership(conn, matcher, outbox=outbox)

    async def _done(
        self,
        request: Request,
        signed: Signed,
        org: Org,
        action: str,
        target: str,
        details: dict[str, object],
        why: str,
        outbox: list[bytes],
    ) -> Response:
        """The CLI's entry (with the reason), then the ownership decisions the change made."""
        index = await self.console.record(signed, action, target, {**details, "reason": why})
        for entry in outbox:
            await self.console.portal.audit.append_async(entry)
        return _back(request, org, index, action.rsplit(".", 1)[1])


def _back(request: Request, org: Org, index: int, action: str) -> Response:
    root = request.scope.get("root_path", "")
    return RedirectResponse(f"{root}/orgs/{org.id}?done={index}&action={action}", 303)
