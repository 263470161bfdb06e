"""Screening hits in the console: the evidence to decide each, and the decision.

GET  /screening[?org=ID]    hits awaiting a decision, worst first: people's (name and pseudonym)
                           and organisations' (name, country, link to its page; `org` shows one
                           organisation's alone), each with the listed entry (names, aliases,
                           programs, birth dates, nationalities), the list and its version, the
                           score and why (viewer; audited `screening_hit.list`, with the counts,
                           never whom)
POST /screening/decide     `subject`, `list`, `entry`, `version` (the entry hash the hit was
                           shown against), `decision` clear|confirm, `reason`        operator
POST /screening/decide-org the same with `org` (its id) for `subject`                operator

The decision is `screening.service.resolve` (`resolve_org` for an organisation), as `clearance
lists resolve` (`resolve-org`) makes it: `clear` is a false positive (the hit drops out),
`confirm` a true match (a block; an organisation's blocks every member); it holds while the
listed entry's content hash is unchanged, and the person or organisation is screened again at
once. Its entry is the CLI's `screening_resolve` (the reason kept only as a digest) with the
actor `portal:<subject>`. A hit decided since the page was rendered, or whose entry changed, is
refused with 409.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Connection
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clearance.audit.service import AuditLog
from clearance.portal.console.context import Console, FieldError, done_params, reason, text
from clearance.portal.console.dashboard import queues
from clearance.portal.operators import OPERATOR, VIEWER
from clearance.principals import directory
from clearance.principals import service as principals
from clearance.principals.models import Org, User
from clearance.screening import hits, repository, service
from clearance.screening.hits import Holder, StoredHit
from clearance.screening.models import Entry
from clearance.screening.repository import ListVersion
from clearance.screening.settings import thresholds

PAGE = 100
DECISIONS = {"clear": service.Resolution.FALSE_POSITIVE, "confirm": service.Resolution.TRUE_MATCH}
_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Evidence:
    """One pending hit with what an operator decides it on."""

    hit: StoredHit
    version: ListVersion | None  # the list's newest version (None: the list is gone)
    entry: Entry | None  # the entry in that version (None: no longer listed)
    changed: bool  # the newest version says something else of the entry than was screened
    person: User | None = None  # whose hit: a person's...
    org: Org | None = None  # ...or an organisation's


def evidence(conn: Connection, org: int | None = None) -> tuple[list[Evidence], list[Evidence]]:
    """People's pending hits and organisations' (only organisation `org`'s, if given)."""
    lists: dict[str, ListVersion | None] = {}

    def listed(hit: StoredHit) -> tuple[ListVersion | None, Entry | None, bool]:
        if hit.list_name not in lists:
            lists[hit.list_name] = repository.latest(conn, hit.list_name)
        version = lists[hit.list_name]
        found = repository.entry(conn, version.id, hit.entry_id) if version else None
        entry, digest = found if found is not None else (None, None)
        return version, entry, digest != hit.entry_hash

    people = [] if org is not None else hits.pending(conn, PAGE)
    orgs = hits.pending(conn, PAGE, Holder.ORG, holder_id=org)
    return (
        [
            Evidence(h, *listed(h), person=principals.get_user_by_id(conn, h.holder_id))
            for h in people
        ],
        [Evidence(h, *listed(h), org=directory.get_org_by_id(conn, h.holder_id)) for h in orgs],
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """A decision form as posted, checked (the holder's field apart)."""

    list_name: str
    entry_id: str
    version: str
    verb: str
    why: str


def decision(form: FormData) -> Decision:
    list_name = text(form, "list", limit=100)
    entry_id = text(form, "entry", limit=200)
    version = text(form, "version", limit=64)
    if not _HASH.fullmatch(version):
        raise FieldError("version", "not a version this console issued: reload the page")
    verb = text(form, "decision", limit=16)
    if verb not in DECISIONS:
        raise FieldError("decision", "choose clear (a false positive) or confirm (a match)")
    return Decision(list_name, entry_id, version, verb, reason(form))


class Indices:
    """An `AuditSink` that remembers the indices it was given (the first is the decision's)."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log
        self.indices: list[int] = []

    def append(self, entry: bytes) -> int:
        index = self.log.append(entry)
        self.indices.append(index)
        return index


class ScreeningViews:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def page(self, request: Request) -> Response:
        signed = await self.console.require(request, VIEWER)
        org = request.query_params.get("org") or None
        if org is not None and not (org.isascii() and org.isdigit() and len(org) <= 9):
            raise FieldError("org", "not an organisation id")
        only = int(org) if org is not None else None
        found, org_found = await self.console.portal.db(lambda c: evidence(c, only))
        waiting = await self.console.portal.db(queues)
        await self.console.record(
            signed,
            "screening_hit.list",
            "screening_hits",
            {"count": len(found), "organisations": len(org_found)},
        )
        index, action = done_params(request)
        return self.console.page(
            request,
            "screening.html",
            found=found,
            org_found=org_found,
            only=only,
            full=len(found) >= PAGE or len(org_found) >= PAGE,
            orgs=waiting.hits_orgs,
            can_change=signed.can(OPERATOR),
            done=index,
            action=action,
        )

    async def decide(self, request: Request) -> Response:
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        subject = text(form, "subject", limit=200)
        chosen = decision(form)

        def email_of(conn: Connection) -> str:
            return principals.get_user_by_subject(conn, subject).email

        email = await self.console.portal.db(email_of)
        return await self._resolve(request, signed.actor, chosen, service.resolve, email)

    async def decide_org(self, request: Request) -> Response:
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        org = text(form, "org", limit=9)
        if not (org.isascii() and org.isdigit()):
            raise FieldError("org", "not an organisation id")
        chosen = decision(form)
        return await self._resolve(request, signed.actor, chosen, service.resolve_org, int(org))

    async def _resolve(
        self,
        request: Request,
        actor: str,
        chosen: Decision,
        resolve: Callable[..., object],
        holder: str | int,
    ) -> Response:
        """Record the decision on a person's hit (`holder`: an email, `service.resolve`) or an
        organisation's (an id, `service.resolve_org`), then show the queue with its audit index."""
        portal = self.console.portal
        sink = Indices(portal.audit)
        await asyncio.to_thread(
            lambda: resolve(
                portal.engine,
                holder,
                chosen.list_name,
                chosen.entry_id,
                DECISIONS[chosen.verb],
                chosen.why,
                actor=actor,
                thresholds=thresholds(portal.settings),
                audit=sink,
                pending=chosen.version,
            )
        )
        root = request.scope.get("root_path", "")
        location = f"{root}/screening?done={sink.indices[0]}&action={chosen.verb}"
        return RedirectResponse(location, status_code=303)
