"""The organisation page: an org admin declares the business's KYB details and owners (issue 18).

GET  /org                    the details and the declared owners
POST /org                    change the details (legal name, registration, countries, parent)
POST /org/owners             declare a direct owner (a person or an entity, with its share)
POST /org/owners/ID/remove   remove one
POST /org/owners/import      replace the imported ownership with a FollowTheMoney or BODS file

Only an org admin (principals/org_admins.py; granted by an operator) reaches these pages, and
only for their own organisation; the role is read on every request. Each change is recorded with
who made it (`portal:<subject>`), is an audit entry like the operator's CLI verb of the same name,
and screens the organisation again. The page never shows the screening outcome: a restriction
found through an owner is for operators (the tip-off rule, 31 CFR 501.603 practice); members see
only that a model is unavailable.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clearance.audit.entries import admin_action
from clearance.errors import InvalidInput, PermissionDenied
from clearance.portal.context import Portal
from clearance.principals import directory, org_admins, owner_import, owners
from clearance.principals.models import User
from clearance.principals.ownership_files import FORMATS
from clearance.screening.service import build_matcher, rescreen_ownership, screen_org
from clearance.screening.settings import thresholds

MAX_IMPORT_BYTES = 5 * 1024 * 1024
_DETAILS = (
    ("legal_name", "Legal name"),
    ("registration_number", "Registration number"),
    ("registry", "Registry"),
    ("incorporation_country", "Country of incorporation"),
    ("headquarters_country", "Country of headquarters"),
    ("ultimate_parent", "Ultimate parent"),
    ("ultimate_parent_country", "Ultimate parent's country"),
)


class OrgViews:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal

    async def _admin(self, request: Request) -> tuple[User, str]:
        user = await self.portal.require_user(request)
        org = await self.portal.db(lambda c: org_admins.administered_org(c, user.id))
        if org is None:
            raise PermissionDenied("only an admin of your organisation can open this page")
        return user, org

    async def page(self, request: Request) -> Response:
        _, org = await self._admin(request)
        return await self._page(request, org)

    async def _page(self, request: Request, org: str, *, done: str | None = None) -> Response:
        def read(conn: Connection) -> tuple[object, list[owners.Owner]]:
            return directory.get_org(conn, org), owners.list_owners(conn, org)

        record, declared = await self.portal.db(read)
        return self.portal.page(
            request,
            "org.html",
            org=record,
            details=_DETAILS,
            owners=declared,
            formats=FORMATS,
            done=done,
        )

    async def update(self, request: Request) -> Response:
        p = self.portal
        user, org = await self._admin(request)
        form = await p.form(request)
        kyb = {key: str(form.get(key) or "") for key, _ in _DETAILS if key in form}
        outbox: list[bytes] = []

        def change(conn: Connection) -> tuple[int, dict[str, object]] | None:
            current = directory.get_org(conn, org).kyb
            if all(_same(v, current.get(k)) for k, v in kyb.items()):
                return None  # the form sent back what is there: nothing to record
            record, changes = directory.update_org(conn, org, kyb=kyb)
            screen_org(conn, record.id, outbox=outbox)
            return record.id, changes

        changed = await p.db(change, write=True)
        if changed is not None:
            await self._record(user, "org.update", f"org:{changed[0]}", changed[1], outbox)
        return self._back(request)

    async def add_owner(self, request: Request) -> Response:
        p = self.portal
        user, org = await self._admin(request)
        form = await p.form(request)
        kind = str(form.get("kind") or "")
        if kind not in ("person", "entity"):
            raise InvalidInput("an owner is a person or an entity")
        try:
            percent = float(str(form.get("percent") or ""))
        except ValueError:
            raise InvalidInput("the share is a number from 0 to 100") from None
        country = str(form.get("country") or "").strip() or None
        name = str(form.get("name") or "")
        outbox: list[bytes] = []

        def add(conn: Connection) -> owners.Owner:
            owner = owners.add_owner(
                conn, org, kind=kind, name=name, percent=percent, country_code=country,
                actor=_actor(user),
            )  # fmt: skip
            self._rescreen(conn, outbox)
            return owner

        owner = await p.db(add, write=True)
        details = {"org": org, "kind": kind, "percent": percent, "country": owner.country}
        await self._record(user, "org.owner.add", f"org_owner:{owner.id}", details, outbox)
        return self._back(request)

    async def remove_owner(self, request: Request) -> Response:
        p = self.portal
        user, org = await self._admin(request)
        await p.form(request)
        owner_id = int(request.path_params["owner_id"])
        outbox: list[bytes] = []

        def remove(conn: Connection) -> owners.Owner:
            owner = owners.remove_owner(conn, org, owner_id)  # NotFound for another org's
            self._rescreen(conn, outbox)
            return owner

        owner = await p.db(remove, write=True)
        details = {"org": org, "kind": owner.kind, "percent": owner.percent, "reason": "portal"}
        await self._record(user, "org.owner.remove", f"org_owner:{owner.id}", details, outbox)
        return self._back(request)

    async def import_file(self, request: Request) -> Response:
        p = self.portal
        user, org = await self._admin(request)
        form = await p.form(request, max_files=1)
        try:
            fmt = str(form.get("format") or "")
            if fmt not in FORMATS:
                raise InvalidInput(f"the format is one of {', '.join(FORMATS)}")
            upload = form.get("file")
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise InvalidInput("choose a file to import")
            data = await upload.read(MAX_IMPORT_BYTES + 1)
            if len(data) > MAX_IMPORT_BYTES:
                raise InvalidInput(f"the file is over {MAX_IMPORT_BYTES // (1024 * 1024)} MB")
            file_name = upload.filename[-200:]
        finally:
            await form.close()
        outbox: list[bytes] = []

        def load(conn: Connection) -> owner_import.ImportResult:
            done = owner_import.import_owners(conn, org, fmt, file_name, data, actor=_actor(user))
            self._rescreen(conn, outbox)
            return done

        done = await p.db(load, write=True)
        await self._record(
            user, "org.owner.import", f"ownership_import:{done.import_id}",
            done.audit_details(), outbox,
        )  # fmt: skip
        return await self._page(
            request,
            org,
            done=f"Imported {done.file_name}: {done.owners} owners, {done.holdings} holdings.",
        )

    def _rescreen(self, conn: Connection, outbox: list[bytes]) -> None:
        matcher = build_matcher(conn, thresholds(self.portal.settings))
        rescreen_ownership(conn, matcher, outbox=outbox)

    async def _record(
        self,
        user: User,
        action: str,
        target: str,
        details: dict[str, object],
        outbox: list[bytes],
    ) -> None:
        entry = admin_action(
            actor=_actor(user), action=action, target=target, details=details,
            subject=user.subject_id,
        )  # fmt: skip
        for item in (entry, *outbox):
            await self.portal.audit.append_async(item)

    @staticmethod
    def _back(request: Request) -> Response:
        return RedirectResponse(request.scope.get("root_path", "") + "/org", status_code=303)


def _same(submitted: str, current: str | None) -> bool:
    return (submitted.strip() or None) == current or submitted.strip().upper() == current


def _actor(user: User) -> str:
    return f"portal:{user.subject_id}"
