"""The review console: reviewers list, open and decide identity review cases in the browser.

GET  /review                         the queue, oldest first: case, age, method, reasons
GET  /review/ID                      open a case (an audited view), then its facts and images
GET  /review/ID/evidence/N?until&sig one decrypted image of a case opened by this session
POST /review/ID/decide               `outcome` verified | rejected and a required `note`
GET  /review/guard/ID                open a misuse-guard case (an audited view): its flags and
                                     their decrypted excerpts
POST /review/guard/ID/decide         `outcome` cleared | confirmed and a required `note`

The console's review queue (/console/reviews) links a case as `/review/ID?from=console`: its
decision form then carries `back=console`, and the decision returns to the console's queue with
the decision's audit index (`?done=INDEX`) instead of to this one.

The queue lists the pending misuse-guard cases (guard/review.py) below the identity cases.

Every route needs a signed-in account holding the `reviewer` role (operators.py), checked on
each request before any case is looked up: to anyone else every case number, real or not,
answers the same 403 (OWASP ASVS 5.0 V8.2, function- and data-level authorisation). Nobody
decides their own verification (separation of duties): the form is not shown, the POST is 403.

Opening a guard case goes through `guard.review.open_case`, which writes the
`usage.review.view` entry before it decrypts the excerpts (shown inline, as text, escaped).
Opening an identity case goes through `identity.review.open_case`, which writes the
`identity.review.view` entry before it decrypts anything. The page then links each image with
a signature over (case, image, expiry, this session's cookie) under a key derived from the
vault's master key: the image route decrypts that one file in memory only for a link minted by
an audited view, for this browser session, for `LINK_SECONDS`; it writes nothing to disk and
keeps no state, so it works on any worker, and it adds no audit entry of its own (the view
that minted the link is the record). Everything answers `Cache-Control: no-store`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clearance.errors import (
    ConfigError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    UnsupportedImage,
)
from clearance.guard import review as guard_review
from clearance.guard.review import GuardCase
from clearance.identity import review
from clearance.identity.document import sniff
from clearance.identity.models import Case, Outcome
from clearance.identity.service import get_case
from clearance.identity.vault import EvidenceVault
from clearance.portal.context import Portal
from clearance.portal.operators import REVIEWER, has_role
from clearance.portal.security import SESSION_COOKIE
from clearance.principals.models import User
from clearance.principals.service import get_user_by_id

LINK_SECONDS = 10 * 60  # long enough to load and zoom the images; a reload re-opens (audited)
MAX_NOTE = 2000
_NUMBER = re.compile(r"[0-9]{1,12}")  # ASCII digits only, and short enough for int()
IMAGE_HEADERS = {
    # Opened on its own, the image runs nothing and may be embedded by no other site.
    "content-security-policy": "default-src 'none'; sandbox",
    "cross-origin-resource-policy": "same-origin",
    "content-disposition": "inline",
    "cache-control": "no-store",
}


@dataclass(frozen=True, slots=True)
class QueueRow:
    case: Case
    age: str
    files: int


@dataclass(frozen=True, slots=True)
class GuardRow:
    case: GuardCase
    age: str


@dataclass(frozen=True, slots=True)
class Shown:
    kind: str
    url: str | None  # None: erased (retention or the person's request)


def actor(user: User) -> str:
    """The operator account by its pseudonym: no email or name in the audit log."""
    return f"portal:{user.subject_id}"


def age(created: datetime, now: datetime) -> str:
    if created.tzinfo is None:  # SQLite hands back naive UTC
        created = created.replace(tzinfo=UTC)
    hours = int((now - created).total_seconds() // 3600)
    if hours < 1:
        return "< 1 h"
    return f"{hours} h" if hours < 48 else f"{hours // 24} d"


class ReviewViews:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self._vault: EvidenceVault | None = None

    def vault(self) -> EvidenceVault:
        # Opened on first use: a portal nobody reviews on never reads the master key.
        if self._vault is None:
            self._vault = EvidenceVault.open(self.portal.settings.identity)
        return self._vault

    def _signature(self, request: Request, case_id: int, position: int, until: int) -> str:
        key = self.vault().derive_key("portal-review-image-links")  # RFC 5869, its own purpose
        session = request.cookies.get(SESSION_COOKIE, "")
        material = f"{case_id}\0{position}\0{until}\0{session}".encode()
        return hmac.new(key, material, hashlib.sha256).hexdigest()

    async def _reviewer(self, request: Request) -> User:
        user = await self.portal.require_user(request)
        if not await self.portal.db(lambda c: has_role(c, user.id, REVIEWER)):
            raise PermissionDenied("the review console is for reviewers")
        return user

    async def queue(self, request: Request) -> Response:
        await self._reviewer(request)
        cases = await self.portal.db(review.pending)
        now = datetime.now(UTC)
        rows = [
            QueueRow(c, age(c.created_at, now), sum(not e.erased for e in c.evidence))
            for c in cases
        ]
        guard_rows = [
            GuardRow(c, age(c.opened_at, now))
            for c in await self.portal.db(lambda conn: guard_review.list_cases(conn, "pending"))
        ]
        decided = request.query_params.get("decided", "")
        outcome = request.query_params.get("outcome", "")
        guard_decided = request.query_params.get("guard_decided", "")
        return self.portal.page(
            request,
            "review_queue.html",
            rows=rows,
            guard_rows=guard_rows,
            decided=int(decided) if _NUMBER.fullmatch(decided) else None,
            outcome=outcome if outcome in (Outcome.VERIFIED, Outcome.REJECTED) else None,
            guard_decided=int(guard_decided) if _NUMBER.fullmatch(guard_decided) else None,
            guard_outcome=outcome if outcome in ("cleared", "confirmed") else None,
        )

    async def case(self, request: Request) -> Response:
        p = self.portal
        user = await self._reviewer(request)
        case_id: int = request.path_params["case_id"]
        opened = await asyncio.to_thread(
            review.open_case, p.engine, self.vault(), p.audit, case_id, actor=actor(user)
        )
        person = await p.db(lambda c: get_user_by_id(c, opened.case.user_id))
        until = int(time.time()) + LINK_SECONDS
        base = f"{request.scope.get('root_path', '')}/review/{case_id}/evidence"
        shown = [
            Shown(
                evidence.kind.value,
                None
                if data is None
                else f"{base}/{n}?until={until}&sig={self._signature(request, case_id, n, until)}",
            )
            for n, (evidence, data) in enumerate(opened.images)
        ]
        return p.page(
            request,
            "review_case.html",
            back=_back(request.query_params.get("from")),
            case=opened.case,
            person=person,
            document=[s for s in shown if s.kind != "frame"],
            frames=[s for s in shown if s.kind == "frame"],
            max_note=MAX_NOTE,
            cip=bool(p.settings.cip.require),
        )

    async def evidence(self, request: Request) -> Response:
        await self._reviewer(request)
        case_id: int = request.path_params["case_id"]
        position: int = request.path_params["position"]
        until = request.query_params.get("until", "")
        given = request.query_params.get("sig", "")
        if not _NUMBER.fullmatch(until) or int(until) < time.time():
            raise PermissionDenied("this image link has expired: reload the case")
        if not hmac.compare_digest(given, self._signature(request, case_id, position, int(until))):
            raise PermissionDenied("this image link was not issued to this session")
        case = await self.portal.db(lambda c: get_case(c, case_id))
        if not 0 <= position < len(case.evidence) or case.evidence[position].erased:
            raise NotFound("the image has been erased")
        data = await asyncio.to_thread(self.vault().get, case.evidence[position].id)
        kind = sniff(data)  # the vault holds re-encoded JPEGs; anything else is not served
        if kind is None:
            raise UnsupportedImage("the stored evidence is not an image")
        return Response(data, media_type=f"image/{kind.value.lower()}", headers=IMAGE_HEADERS)

    async def decide(self, request: Request) -> Response:
        p = self.portal
        user = await self._reviewer(request)
        form = await p.form(request)
        case_id: int = request.path_params["case_id"]
        if (await p.db(lambda c: get_case(c, case_id))).user_id == user.id:
            raise PermissionDenied("a reviewer may not decide their own verification")
        choice = str(form.get("outcome") or "")
        if choice not in (Outcome.VERIFIED, Outcome.REJECTED):
            raise InvalidInput("choose verified or rejected")
        note = str(form.get("note") or "")
        if len(note) > MAX_NOTE:
            raise InvalidInput(f"the note is at most {MAX_NOTE} characters")
        case = await asyncio.to_thread(
            review.decide_case,
            p.engine,
            p.audit,
            case_id,
            actor=actor(user),
            outcome=Outcome(choice),
            note=note,
            max_age_days=p.settings.policy.verification_max_age_days,
        )
        root = request.scope.get("root_path", "")
        location = f"{root}/review?decided={case.id}&outcome={case.status.value}"
        return _after(request, form.get("back"), location, case.audit_index, case.status.value)

    # -- the misuse guard's cases ------------------------------------------------------------

    def _guard_vault(self) -> EvidenceVault | None:
        try:
            return self.vault()
        except ConfigError:  # no master key: the flags are shown, their excerpts are not
            return None

    async def guard_case(self, request: Request) -> Response:
        p = self.portal
        user = await self._reviewer(request)
        case_id: int = request.path_params["case_id"]
        opened = await asyncio.to_thread(
            guard_review.open_case,
            p.engine,
            self._guard_vault(),
            p.audit,
            case_id,
            actor=actor(user),
        )
        return p.page(
            request,
            "guard_case.html",
            case=opened.case,
            excerpts=opened.excerpts,
            back=_back(request.query_params.get("from")),
            own=opened.case.user_id == user.id,
            max_note=MAX_NOTE,
        )

    async def guard_decide(self, request: Request) -> Response:
        p = self.portal
        user = await self._reviewer(request)
        form = await p.form(request)
        case_id: int = request.path_params["case_id"]
        case = await p.db(lambda c: guard_review.get_case(c, case_id))
        if case.user_id == user.id:
            raise PermissionDenied("a reviewer may not decide a case about their own use")
        choice = str(form.get("outcome") or "")
        if choice not in ("cleared", "confirmed"):
            raise InvalidInput("choose clear or confirm")
        note = str(form.get("note") or "")
        if len(note) > MAX_NOTE:
            raise InvalidInput(f"the note is at most {MAX_NOTE} characters")
        _, index = await asyncio.to_thread(
            guard_review.decide,
            p.engine,
            p.audit,
            case_id,
            actor=actor(user),
            outcome="cleared" if choice == "cleared" else "confirmed",
            reason=note,
        )
        root = request.scope.get("root_path", "")
        location = f"{root}/review?guard_decided={case_id}&outcome={choice}"
        return _after(request, form.get("back"), location, index, choice)


def _back(value: object) -> str | None:
    """Where a decision returns: the console's queue, or (None) this one."""
    return "console" if value == "console" else None


def _after(
    request: Request, back: object, location: str, index: int | None, outcome: str
) -> RedirectResponse:
    """Back to the console's queue with the decision's audit index, or to `location`."""
    if _back(back) == "console" and index is not None:
        root = request.scope.get("root_path", "").removesuffix("/portal")
        location = f"{root}/console/reviews?done={index}&action={outcome}"
    return RedirectResponse(location, status_code=303)
