"""People in the console: search, one person's record, suspension.

GET  /people?q=TEXT&after=CURSOR     people whose email or name contains TEXT (viewer); a search
                                     is an audited look (`user.list`, with the count, never whom)
GET  /people/{subject}               one person: facts, organisation, keys, screening hits
                                     (viewer; audited `user.view`, as in the operator API)
POST /people/{subject}/suspend       `reason`: refused every model until reinstated   operator
POST /people/{subject}/reinstate     `reason`                                         operator
POST /people/{subject}/erase         `reason`, `confirm` (the subject id typed again): every
                                     image of their identity evidence goes; the account, facts,
                                     decisions and entries stay (export records)      operator

People are addressed by their pseudonymous subject id, so no email is in a URL (or a log).
The changes are `principals.directory`'s, as `clearance users suspend|reinstate` and the
operator API make them, with the same entries. Erasure is `identity.service.erase_evidence`, as
`clearance users erase` makes it: refused whole (409) while a legal hold binds the person, its
own `identity.evidence.erase` entry (or `..._refused`), then the CLI's `user.erase` with the
reason and the count of files.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clearance.identity import service as identity
from clearance.portal.console.context import Console, FieldError, done_params, reason, text
from clearance.portal.operators import OPERATOR, VIEWER
from clearance.principals import directory
from clearance.principals import service as principals
from clearance.principals.directory import PageRequest
from clearance.principals.models import ApiKey, User
from clearance.screening import hits
from clearance.screening.hits import StoredHit

PAGE = 50


@dataclass(frozen=True, slots=True)
class Record:
    user: User
    keys: tuple[ApiKey, ...]
    hits: tuple[StoredHit, ...]


class PeopleViews:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def search(self, request: Request) -> Response:
        signed = await self.console.require(request, VIEWER)
        query = request.query_params.get("q", "").strip()
        after = request.query_params.get("after") or None
        if len(query) > 320:
            raise FieldError("q", "at most 320 characters")
        if after is not None and not (after.isascii() and after.isdigit() and len(after) < 12):
            raise FieldError("after", "not a cursor from this list")
        page = PageRequest(limit=PAGE, after=after)

        def run(conn: Connection) -> directory.Page[User]:
            return directory.list_users(conn, page, search=query or None)

        found = await self.console.portal.db(run)
        await self.console.record(signed, "user.list", "users", {"count": len(found.items)})
        return self.console.page(request, "people.html", query=query, found=found)

    async def person(self, request: Request) -> Response:
        signed = await self.console.require(request, VIEWER)
        subject = request.path_params["subject"]

        def run(conn: Connection) -> Record:
            user = principals.get_user_by_subject(conn, subject)
            keys = principals.list_keys(conn, user.id)
            return Record(user, tuple(keys), tuple(hits.for_user(conn, user.id)))

        record = await self.console.portal.db(run)
        # Looking at a person's record is itself a record (who looked, never what they saw).
        await self.console.record(signed, "user.view", "user", {}, subject=record.user.subject_id)
        index, action = done_params(request)
        return self.console.page(
            request,
            "person.html",
            record=record,
            can_change=signed.can(OPERATOR),
            done=index,
            action=action,
        )

    async def suspend(self, request: Request) -> Response:
        return await self._change(request, "suspend", directory.suspend_user)

    async def reinstate(self, request: Request) -> Response:
        return await self._change(request, "reinstate", directory.reinstate_user)

    async def _change(
        self, request: Request, verb: str, change: Callable[[Connection, str, str], User]
    ) -> Response:
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        why = reason(form)
        subject = request.path_params["subject"]

        def run(conn: Connection) -> User:
            email = principals.get_user_by_subject(conn, subject).email
            return change(conn, email, why)

        user = await self.console.portal.db(run, write=True)
        index = await self.console.record(
            signed, f"user.{verb}", user.subject_id, {"reason": why}, subject=user.subject_id
        )
        root = request.scope.get("root_path", "")
        location = f"{root}/people/{subject}?done={index}&action={verb}"
        return RedirectResponse(location, status_code=303)

    async def erase(self, request: Request) -> Response:
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        why = reason(form)
        subject = request.path_params["subject"]
        if text(form, "confirm", limit=64) != subject:  # irreversible: the id typed, not a click
            raise FieldError("confirm", "type the person's subject id to confirm the erasure")

        def find(conn: Connection) -> User:
            return principals.get_user_by_subject(conn, subject)

        user = await self.console.portal.db(find)
        portal = self.console.portal
        count = await asyncio.to_thread(
            identity.erase_evidence,
            portal.engine,
            portal.vault(),
            portal.audit,
            user.id,
            actor=signed.actor,
        )
        index = await self.console.record(
            signed, "user.erase", subject, {"reason": why, "files": count}, subject=subject
        )
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}/people/{subject}?done={index}&action=erase", 303)
