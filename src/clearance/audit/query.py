"""Finding records: by person (pseudonymous subject), model, entry type, time, and the typed
fields of a decision (HTTP status, reason code, effect, endpoint, outcome, a rule it applied).

A regulator asks "what did you serve to this person, or of this model, in this period"; the
answer is the matching entries with their indices, each provable by an inclusion proof.
`scan` reads the whole log oldest first (the CLI, exports); `newest_first` reads back from an
index within a budget of entries, a page at a time (the console's explorer).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from clearance.audit.compat import typed_view
from clearance.audit.reader import LogReader

CHUNK = 10_000


@dataclass(frozen=True, slots=True)
class EntryFilter:
    subject: str | None = None
    model: str | None = None
    type: str | None = None
    since: str | None = None  # RFC 3339, compared as text (entries use one fixed UTC form)
    until: str | None = None
    status: int | None = None
    reason: str | None = None
    effect: str | None = None
    endpoint: str | None = None
    outcome: str | None = None
    rule: str | None = None  # one of the rules a decision applied (`rules`)

    def matches(self, record: dict[str, Any]) -> bool:
        """Whether the entry matches; entries of older schema versions are read as the current
        one (audit/compat.py), so "every 451 for this person" finds them too."""
        record = typed_view(record)
        for name in ("status", "reason", "effect", "endpoint", "outcome"):
            wanted = getattr(self, name)
            if wanted is not None and record.get(name) != wanted:
                return False
        if self.subject is not None and record.get("subject") != self.subject:
            return False
        if self.type is not None and record.get("type") != self.type:
            return False
        if self.rule is not None and self.rule not in (record.get("rules") or ()):
            return False
        if self.model is not None and self.model not in (
            record.get("model_requested"),
            record.get("model_served"),
            record.get("target"),
        ):
            return False
        moment = str(record.get("time", ""))
        if self.since is not None and moment < self.since:
            return False
        return self.until is None or moment < self.until


def select(
    entries: Iterable[tuple[int, bytes]], where: EntryFilter
) -> Iterator[tuple[int, dict[str, Any]]]:
    for index, raw in entries:
        record = orjson.loads(raw)
        if isinstance(record, dict) and where.matches(record):
            yield index, record


def scan(reader: LogReader) -> Iterator[tuple[int, bytes]]:
    """Every committed entry, in order, read in chunks."""
    _, head = reader.sizes()
    for start in range(0, head, CHUNK):
        for offset, raw in enumerate(reader.entries(start, min(head, start + CHUNK))):
            yield start + offset, raw


@dataclass(frozen=True, slots=True)
class Found:
    """A page of matches, newest first, as (index, the stored bytes, the typed record)."""

    entries: tuple[tuple[int, bytes, dict[str, Any]], ...]
    before: int | None  # where the next page starts (exclusive); None: searched down to the floor


def newest_first(
    reader: LogReader,
    where: EntryFilter,
    *,
    before: int,
    floor: int,
    want: int,
    budget: int,
) -> Found:
    """Up to `want` matching entries below `before` and at or above `floor`, newest first,
    reading at most about `budget` entries: a search of a long log comes back a page at a time
    and says where to go on (`Found.before`)."""
    found: list[tuple[int, bytes, dict[str, Any]]] = []
    stop = before
    while stop > floor and len(found) < want and before - stop < budget:
        start = max(floor, stop - CHUNK)
        chunk = reader.entries(start, stop)
        for offset in range(len(chunk) - 1, -1, -1):
            index, raw = start + offset, chunk[offset]
            record = orjson.loads(raw)
            if isinstance(record, dict) and where.matches(record):
                found.append((index, raw, typed_view(record)))
                if len(found) == want:
                    return Found(tuple(found), index if index > floor else None)
        stop = start
    return Found(tuple(found), stop if stop > floor else None)
