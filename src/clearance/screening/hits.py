"""A user's current hits (the review queue) and the operator's resolutions of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.screening.matcher import Matcher
from clearance.screening.models import Match, Outcome, ScreeningResult
from clearance.screening.repository import entry_hash
from clearance.screening.tables import screening_hits, screening_resolutions


@dataclass(frozen=True, slots=True)
class Hit:
    match: Match
    entry_hash: str


@dataclass(frozen=True, slots=True)
class StoredHit:
    user_id: int
    list_name: str
    entry_id: str
    entry_hash: str
    matched_name: str
    score: float
    outcome: Outcome
    why: tuple[str, ...]


def now() -> datetime:
    return datetime.now(UTC)


def with_hashes(matches: Sequence[Match], matcher: Matcher) -> list[Hit]:
    return [Hit(m, entry_hash(matcher.entries[(m.list_name, m.entry_id)])) for m in matches]


def store(conn: Connection, user_id: int, found: Sequence[Hit]) -> None:
    """Replace the user's stored hits, writing only when they differ (re-screens are frequent)."""
    old = {
        (h.list_name, h.entry_id, h.entry_hash, h.outcome.value, round(h.score, 6))
        for h in for_user(conn, user_id)
    }
    new = {
        (m.list_name, m.entry_id, h.entry_hash, m.outcome.value, round(m.score, 6))
        for h in found
        for m in (h.match,)
    }
    if old == new:
        return
    conn.execute(sa.delete(screening_hits).where(screening_hits.c.user_id == user_id))
    if found:
        conn.execute(
            sa.insert(screening_hits),
            [
                {
                    "user_id": user_id,
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
    rows = conn.execute(
        sa.select(screening_hits)
        .where(screening_hits.c.user_id == user_id)
        .order_by(screening_hits.c.score.desc())
    )
    return [_stored(r) for r in rows]


def queue(conn: Connection) -> list[StoredHit]:
    """Every stored hit, worst first: what operators review."""
    rows = conn.execute(
        sa.select(screening_hits).order_by(screening_hits.c.score.desc(), screening_hits.c.user_id)
    )
    return [_stored(r) for r in rows]


def pending(conn: Connection, limit: int) -> list[StoredHit]:
    """Stored hits no resolution decides (none, or one made against another version of the
    entry), worst first: what waits for an operator."""
    h, r = screening_hits, screening_resolutions
    decided = sa.exists().where(
        r.c.user_id == h.c.user_id,
        r.c.list_name == h.c.list_name,
        r.c.entry_id == h.c.entry_id,
        r.c.entry_hash == h.c.entry_hash,
    )
    rows = conn.execute(
        sa.select(h)
        .where(~decided)
        .order_by(h.c.score.desc(), h.c.user_id, h.c.list_name, h.c.entry_id)
        .limit(limit)
    )
    return [_stored(row) for row in rows]


def current(conn: Connection, user_id: int, list_name: str, entry_id: str) -> StoredHit | None:
    row = conn.execute(
        sa.select(screening_hits).where(
            screening_hits.c.user_id == user_id,
            screening_hits.c.list_name == list_name,
            screening_hits.c.entry_id == entry_id,
        )
    ).first()
    return _stored(row) if row is not None else None


def resolutions(conn: Connection, user_id: int) -> dict[tuple[str, str], tuple[str, str]]:
    """(list, entry id) -> (resolution, entry hash it was made against)."""
    rows = conn.execute(
        sa.select(screening_resolutions).where(screening_resolutions.c.user_id == user_id)
    )
    return {(r.list_name, r.entry_id): (r.resolution, r.entry_hash) for r in rows}


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


def _stored(row: sa.Row[tuple[object, ...]]) -> StoredHit:
    return StoredHit(
        user_id=int(row.user_id),
        list_name=str(row.list_name),
        entry_id=str(row.entry_id),
        entry_hash=str(row.entry_hash),
        matched_name=str(row.matched_name),
        score=float(row.score),
        outcome=Outcome(row.outcome),
        why=tuple(row.why),
    )
