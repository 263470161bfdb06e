"""Finding records: by person (pseudonymous subject), model, entry type, time, and the typed
fields of a decision (HTTP status, reason code, effect, endpoint, outcome).

A regulator asks "what did you serve to this person, or of this model, in this period"; the
answer is the matching entries with their indices, each provable by an inclusion proof.
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
