"""The audit explorer: entries by person, model, rule, effect, type and time, newest first, each
with its inclusion proof against the latest signed checkpoint.

GET /audit?person=EMAIL|SUBJECT&model=M&rule=R&effect=E&type=T&since=D&until=D&before=I
GET /audit?index=I        one entry                                                   viewer

The search is `audit.query.newest_first` over the stored log (the filters `clearance audit query`
applies), a page of `PAGE` at a time, reading at most `BUDGET` entries per view: a search of a
long log says where it stopped and links the next page. A time range is found by binary search
on the entries' time (as the dashboard finds the day's first entry), so it costs its own length,
not the log's. Entries below the pruned bound are in the archive only: `clearance audit export`.

Each entry shown below the checkpoint's size carries its RFC 9162 §2.1.3.1 inclusion proof, built
from the stored tiles and checked here (§2.1.3.2) against the checkpoint's root, whose signature
is checked with the log's key (C2SP signed-note); the same proof is served as JSON at
`/audit/proof/inclusion?index=I&size=N` and the entry's bytes at `/audit/entries/I`, for anyone
to check offline. Entries appended since the checkpoint wait for the next one.

A look at the log is itself an entry (`audit.query`: the filter, the person by pseudonym, the
count shown), as a people search is.
"""

from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import Response

from clearance.audit import merkle
from clearance.audit.archive import open_archive, pruned_below
from clearance.audit.bundle import parse_moment
from clearance.audit.checkpoint import Checkpoint, open_checkpoint
from clearance.audit.keys import load_signer
from clearance.audit.query import EntryFilter, Found, newest_first
from clearance.audit.reader import LogReader, StoredTiles, cosigned_note, head_size
from clearance.errors import InvalidInput, NotFound
from clearance.portal.console.context import Console, FieldError
from clearance.portal.console.dashboard import first_index_since
from clearance.portal.operators import VIEWER
from clearance.principals import service as principals
from clearance.store import reading

PAGE = 50
BUDGET = 100_000  # entries read per view at most
EFFECTS = ("allow", "deny", "fallback", "error")
_WORD = re.compile(r"[A-Za-z0-9_.:/-]{1,200}")
_NUMBER = re.compile(r"[0-9]{1,19}")


@dataclass(frozen=True, slots=True)
class Query:
    """The form, checked: what the page shows back in its fields."""

    person: str = ""
    model: str = ""
    rule: str = ""
    effect: str = ""
    type: str = ""
    since: str = ""
    until: str = ""
    before: int | None = None
    index: int | None = None

    def params(self) -> dict[str, str]:
        """The filter as query parameters (for the next page's link)."""
        names = ("person", "model", "rule", "effect", "type", "since", "until")
        return {n: getattr(self, n) for n in names if getattr(self, n)}


@dataclass(frozen=True, slots=True)
class Shown:
    index: int
    record: dict[str, Any]
    raw: str  # the stored bytes, as text (the entry is JSON)
    proof: tuple[str, ...] | None  # base64 hashes; None: after the checkpoint


@dataclass(frozen=True, slots=True)
class Result:
    checkpoint: Checkpoint | None
    note: str | None
    head: int
    floor: int  # entries below are archived (not searched here)
    entries: tuple[Shown, ...]
    before: int | None  # the next page's cursor


def _number(request: Request, name: str) -> int | None:
    value = request.query_params.get(name, "")
    if not value:
        return None
    if not _NUMBER.fullmatch(value):
        raise FieldError(name, "a whole number (an entry's index)")
    return int(value)


def parse(request: Request) -> Query:
    q = request.query_params

    def word(name: str) -> str:
        value = q.get(name, "").strip()
        if value and not _WORD.fullmatch(value):
            raise FieldError(name, "letters, digits and . _ : / - only, at most 200")
        return value

    person = q.get("person", "").strip()
    if len(person) > 320:
        raise FieldError("person", "at most 320 characters")
    effect = q.get("effect", "").strip()
    if effect and effect not in EFFECTS:
        raise FieldError("effect", f"one of {', '.join(EFFECTS)}")
    moments = {}
    for name in ("since", "until"):
        text = q.get(name, "").strip()
        if text:
            try:
                parse_moment(text, name)
            except InvalidInput as exc:
                raise FieldError(name, "a date (YYYY-MM-DD) or time (ISO 8601, UTC)") from exc
        moments[name] = text
    if moments["since"] and moments["until"]:
        if parse_moment(moments["until"], "until") <= parse_moment(moments["since"], "since"):
            raise FieldError("until", "must be later than since")
    return Query(
        person=person,
        model=word("model"),
        rule=word("rule"),
        effect=effect,
        type=word("type"),
        since=moments["since"],
        until=moments["until"],
        before=_number(request, "before"),
        index=_number(request, "index"),
    )


class AuditViews:
    def __init__(self, console: Console) -> None:
        self.console = console
        settings = console.portal.settings.audit
        self.archive = open_archive(settings)
        self.reader = LogReader(console.portal.engine, self.archive)
        self.verifier = load_signer(settings.signing_key_file).verifier
        self.origin = settings.origin

    def _subject(self, conn: Connection, person: str) -> str:
        """A person by email or by pseudonym; the filter names them by pseudonym only."""
        try:
            if "@" in person:
                return principals.get_user(conn, person).subject_id
            return principals.get_user_by_subject(conn, person).subject_id
        except NotFound as exc:
            raise FieldError("person", "no such person (an email or a subject id)") from exc

    def search(self, conn: Connection, query: Query) -> tuple[Result, str | None]:
        subject = self._subject(conn, query.person) if query.person else None
        head = head_size(conn)
        floor = pruned_below(conn)
        since = parse_moment(query.since, "since") if query.since else None
        until = parse_moment(query.until, "until") if query.until else None
        note = cosigned_note(conn)
        checkpoint = None if note is None else open_checkpoint(note, self.verifier, self.origin)
        if query.index is not None:
            if not floor <= query.index < head:
                raise NotFound(f"no audit entry {query.index} here (entries {floor} to {head - 1})")
            where = EntryFilter()
            top, low = query.index + 1, query.index
        else:
            where = EntryFilter(
                subject=subject,
                model=query.model or None,
                type=query.type or None,
                since=since,
                until=until,
                effect=query.effect or None,
                rule=query.rule or None,
            )
            low = floor if since is None else first_index_since(conn, since, head)
            top = head if until is None else first_index_since(conn, until, head)
            if query.before is not None:
                top = min(top, query.before)
        found = newest_first(self.reader, where, before=top, floor=low, want=PAGE, budget=BUDGET)
        shown = self._proved(conn, found, checkpoint)
        return Result(checkpoint, note, head, floor, shown, found.before), subject

    def _proved(
        self, conn: Connection, found: Found, checkpoint: Checkpoint | None
    ) -> tuple[Shown, ...]:
        read = StoredTiles(conn, self.archive).node_reader()
        shown = []
        for index, raw, record in found.entries:
            proof = None
            if checkpoint is not None and index < checkpoint.size:
                hashes = merkle.inclusion_proof(index, checkpoint.size, read)
                # RFC 9162 §2.1.3.2: a proof that does not lead to the signed root is not shown
                # as one (VerificationError, the page says the log does not verify).
                merkle.verify_inclusion(
                    index, checkpoint.size, merkle.leaf_hash(raw), hashes, checkpoint.root
                )
                proof = tuple(base64.b64encode(h).decode() for h in hashes)
            text = orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2).decode()
            shown.append(Shown(index, record, text, proof))
        return tuple(shown)

    async def page(self, request: Request) -> Response:
        signed = await self.console.require(request, VIEWER)
        query = parse(request)
        engine = self.console.portal.engine

        def run() -> tuple[Result, str | None]:
            with reading(engine) as conn:
                return self.search(conn, query)

        result, subject = await asyncio.to_thread(run)
        details: dict[str, object] = {k: v for k, v in query.params().items() if k != "person"} | {
            "count": len(result.entries)
        }
        if query.index is not None:
            details["index"] = query.index
        await self.console.record(signed, "audit.query", "audit_log", details, subject=subject)
        return self.console.page(
            request,
            "audit.html",
            query=query,
            result=result,
            effects=EFFECTS,
            next_params=query.params() | ({"before": str(result.before)} if result.before else {}),
        )
