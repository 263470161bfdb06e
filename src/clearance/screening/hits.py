"""Current hits (the review queue) and the operator's resolutions of them, for a person and for
an organisation screened as an entity: the same rows, kept apart by who holds them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.screening.matcher import Matcher
from clearance.screening.models import Match, Outcome, ScreeningResult
from clearance.screening.repository import entry_hash
from clearance.screening.tables import (
    org_screening_hits,
    org_screening_resolutions,
    screening_hits,
    screening_resolutions,
)


class Holder(StrEnum):
    """Who was screened: a person (`users`) or an organisation (`orgs`)."""

    USER = "user"
    ORG = "org"


@dataclass(frozen=True, slots=True)
class _Book:
    hits: sa.Table
    resolutions: sa.Table
    key: str  # the holder's column in both tables


_BOOKS = {
    Holder.USER: _Book(screening_hits, screening_resolutions, "user_id"),
    Holder.ORG: _Book(org_screening_hits, org_screening_resolutions, "org_id"),
}


@dataclass(frozen=True, slots=True)
class Hit:
    match: Match
    entry_hash: str


@dataclass(frozen=True, slots=True)
class StoredHit:
    holder: Holder
    holder_id: int  # a user's id or an organisation's, as `holder` says
    list_name: str
    entry_id: str
    entry_hash: str
    matched_name: str
    score: float
    outcome: Outcome
    why: tuple[str, ...]

    @property
    def user_id(self) -> int | None:
        return self.holder_id if self.holder is Holder.USER else None

    @property
    def org_id(self) -> int | None:
        return self.holder_id if self.holder is Holder.ORG else None


def now() -> datetime:
    return datetime.now(UTC)


def with_hashes(matches: Sequence[Match], matcher: Matcher) -> list[Hit]:
    return [Hit(m, entry_hash(matcher.entries[(m.list_name, m.entry_id)])) for m in matches]


def store(
    conn: Connection, holder_id: int, found: Sequence[Hit], holder: Holder = Holder.USER
) -> None:
    """Replace the holder's stored hits, writing only when they differ (re-screens are
    frequent)."""
    book = _BOOKS[holder]
    old = {
        (h.list_name, h.entry_id, h.entry_hash, h.outcome.value, round(h.score, 6))
        for h in _held(conn, holder, holder_id)
    }
    new = {
        (m.list_name, m.entry_id, h.entry_hash, m.outcome.value, round(m.score, 6))
        for h in found
        for m in (h.match,)
    }
    if old == new:
        return
    conn.execute(sa.delete(book.hits).where(book.hits.c[book.key] == holder_id))
    if found:
        conn.execute(
            sa.insert(book.hits),
            [
                {
                    book.key: holder_id,
                    "list_name": h.match.list_name,
                    "entry_id": h.match.entry_id,
                    "entry_hash": h.entry_hash,
                    "matched_name": h.match.matched_name,
                    "score": h.match.score,
                    "outcome": h.match.outcome.value,
                    "why": list(h.match.why),
                    "screened_at": now(),
                }
                for h in found
            ],
        )


def for_user(conn: Connection, user_id: int) -> list[StoredHit]:
    return _held(conn, Holder.USER, user_id)


def for_org(conn: Connection, org_id: int) -> list[StoredHit]:
    return _held(conn, Holder.ORG, org_id)


def _held(conn: Connection, holder: Holder, holder_id: int) -> list[StoredHit]:
    book = _BOOKS[holder]
    rows = conn.execute(
        sa.select(book.hits)
        .where(book.hits.c[book.key] == holder_id)
        .order_by(book.hits.c.score.desc())
    )
    return [_stored(r, holder) for r in rows]


def queue(conn: Connection) -> list[StoredHit]:
    """Every stored hit, people's and organisations', worst first: what operators review."""
    found: list[StoredHit] = []
    for holder, book in _BOOKS.items():
        rows = conn.execute(sa.select(book.hits).order_by(book.hits.c[book.key]))
        found += [_stored(r, holder) for r in rows]
    # Stable: among equal scores, people before organisations, each by id.
    return sorted(found, key=lambda h: -h.score)


def pending(
    conn: Connection, limit: int, holder: Holder = Holder.USER, holder_id: int | None = None
) -> list[StoredHit]:
    """Stored hits no resolution decides (none, or one made against another version of the
    entry), worst first: what waits for an operator (of one holder's, with `holder_id`)."""
    book = _BOOKS[holder]
    h, r = book.hits, book.resolutions
    decided = sa.exists().where(
        r.c[book.key] == h.c[book.key],
        r.c.list_name == h.c.list_name,
        r.c.entry_id == h.c.entry_id,
        r.c.entry_hash == h.c.entry_hash,
    )
    query = sa.select(h).where(~decided)
    if holder_id is not None:
        query = query.where(h.c[book.key] == holder_id)
    rows = conn.execute(
        query.order_by(h.c.score.desc(), h.c[book.key], h.c.list_name, h.c.entry_id).limit(limit)
    )
    return [_stored(row, holder) for row in rows]


def current(
    conn: Connection,
    holder_id: int,
    list_name: str,
    entry_id: str,
    holder: Holder = Holder.USER,
) -> StoredHit | None:
    book = _BOOKS[holder]
    row = conn.execute(
        sa.select(book.hits).where(
            book.hits.c[book.key] == holder_id,
            book.hits.c.list_name == list_name,
            book.hits.c.entry_id == entry_id,
        )
    ).first()
    return _stored(row, holder) if row is not None else None


def resolutions(
    conn: Connection, holder_id: int, holder: Holder = Holder.USER
) -> dict[tuple[str, str], tuple[str, str]]:
    """(list, entry id) -> (resolution, entry hash it was made against)."""
    book = _BOOKS[holder]
    rows = conn.execute(
        sa.select(book.resolutions).where(book.resolutions.c[book.key] == holder_id)
    )
    return {(r.list_name, r.entry_id): (r.resolution, r.entry_hash) for r in rows}


def record(conn: Connection, hit: StoredHit, resolution: str, reason: str, actor: str) -> None:
    """Keep an operator's decision on `hit`, made against its entry hash, replacing any earlier
    decision on the same list entry."""
    book = _BOOKS[hit.holder]
    table = book.resolutions
    conn.execute(
        sa.delete(table).where(
            table.c[book.key] == hit.holder_id,
            table.c.list_name == hit.list_name,
            table.c.entry_id == hit.entry_id,
        )
    )
    conn.execute(
        sa.insert(table).values(
            {
                book.key: hit.holder_id,
                "list_name": hit.list_name,
                "entry_id": hit.entry_id,
                "entry_hash": hit.entry_hash,
                "resolution": resolution,
                "reason": reason,
                "resolved_by": actor,
                "resolved_at": now(),
            }
        )
    )


def resolve(
    raw: ScreeningResult,
    found: Sequence[Hit],
    decided: Mapping[tuple[str, str], tuple[str, str]],
) -> ScreeningResult:
    """Apply resolutions that still hold (same entry hash): false positives drop out, true
    matches count as matches. A changed entry is screened afresh."""
    kept: list[Match] = []
    for hit in found:
        match = hit.match
        decision = decided.get((match.list_name, match.entry_id))
        if decision is not None and decision[1] == hit.entry_hash:
            if decision[0] == "false_positive":
                continue
            match = replace(
                match, outcome=Outcome.MATCH, why=(*match.why, "confirmed by an operator")
            )
        kept.append(match)
    rank = {Outcome.CLEAR: 0, Outcome.POTENTIAL_MATCH: 1, Outcome.MATCH: 2}
    status = max((m.outcome for m in kept), key=rank.__getitem__, default=Outcome.CLEAR)
    return ScreeningResult(raw.query, status, tuple(kept))


def _stored(row: sa.Row[tuple[object, ...]], holder: Holder) -> StoredHit:
    return StoredHit(
        holder=holder,
        holder_id=int(row.org_id if holder is Holder.ORG else row.user_id),
        list_name=str(row.list_name),
        entry_id=str(row.entry_id),
        entry_hash=str(row.entry_hash),
        matched_name=str(row.matched_name),
        score=float(row.score),
        outcome=Outcome(row.outcome),
        why=tuple(row.why),
    )
