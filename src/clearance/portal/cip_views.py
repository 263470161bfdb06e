"""The Customer Identification Programme record in the portal (identity/cip.py; 89 FR 5698).

GET  /cip                   the person: what the programme keeps, and a form for what it still
                            needs from them (only the required fields a person supplies)
POST /cip                   record those fields (an `identity.cip.update` entry: names, not values)
POST /review/{case}/cip     a reviewer opens the record of a case's person, with a reason: the
                            view is an audit entry before anything is decrypted

Nothing here shows a person's supplied values back to them or to anyone but a reviewer.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clearance.errors import InvalidInput, NotFound, PermissionDenied
from clearance.identity import cip
from clearance.identity.service import get_case
from clearance.portal.context import Portal
from clearance.portal.operators import REVIEWER, has_role
from clearance.principals.models import User

LABELS = {
    "name": "your name, as on your account",
    "email": "your email address",
    "document": "the type and number of the document you verify with",
    "address": "your postal address",
    "phone": "your telephone number",
    "payment": "how you pay (means and source)",
    "ip": "the IP addresses your keys are used from, per day",
}


def actor(user: User) -> str:
    return f"portal:{user.subject_id}"


class CipViews:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal

    def _keys(self) -> cip.CipKeys:
        return cip.CipKeys.of(self.portal.vault())

    async def page(self, request: Request, *, error: str | None = None) -> Response:
        p = self.portal
        user = await p.require_user(request)
        settings = p.settings.cip
        if not settings.require:
            raise NotFound("this service keeps no customer identification record")
        ask = await p.db(lambda c: cip.to_supply(settings, c, user.id))
        kept = [(f, LABELS[f]) for f in cip.FIELDS if f in settings.require]
        return p.page(
            request,
            "cip.html",
            status=400 if error else 200,
            kept=kept,
            ask=ask,
            means=cip.PAYMENT_MEANS,
            saved=request.query_params.get("saved") == "1",
            error=error,
        )

    async def submit(self, request: Request) -> Response:
        p = self.portal
        user = await p.require_user(request)
        form = await p.form(request)
        changes: dict[str, object] = {}
        for field in cip.SUPPLIED:
            if field == "payment":
                means, source = form.get("payment_means"), form.get("payment_source")
                if means or source:
                    changes["payment"] = {"means": means, "source": source}
            elif form.get(field):
                changes[field] = str(form.get(field))
        try:
            await asyncio.to_thread(
                cip.supply,
                p.engine,
                self._keys(),
                p.audit,
                p.settings.cip,
                user.id,
                changes,
                actor=actor(user),
            )
        except InvalidInput as exc:  # the form again, naming the field
            return await self.page(request, error=exc.detail)
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}/cip?saved=1", 303)

    async def review(self, request: Request) -> Response:
        """A reviewer opens the CIP record of a case's person (POST: it is recorded)."""
        p = self.portal
        user = await p.require_user(request)
        if not await p.db(lambda c: has_role(c, user.id, REVIEWER)):
            raise PermissionDenied("the CIP record is for reviewers")
        form = await p.form(request)
        case_id: int = request.path_params["case_id"]
        case = await p.db(lambda c: get_case(c, case_id))
        record = await asyncio.to_thread(
            cip.view,
            p.engine,
            self._keys(),
            p.audit,
            p.settings.cip,
            case.user_id,
            actor=actor(user),
            purpose=str(form.get("reason") or ""),
        )
        return p.page(request, "cip_record.html", case=case, record=record, labels=LABELS)
