"""Screening data: listed entries, queries, matches and results. Plain frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum


class EntityType(StrEnum):
    PERSON = "person"
    ENTITY = "entity"
    VESSEL = "vessel"
    AIRCRAFT = "aircraft"


class Outcome(StrEnum):
    CLEAR = "clear"
    POTENTIAL_MATCH = "potential_match"
    MATCH = "match"


class ListFormat(StrEnum):
    OFAC_SDN = "ofac-sdn"
    CSL = "csl"
    UN_XML = "un-xml"
    FTM = "ftm"


@dataclass(frozen=True, slots=True)
class BirthDate:
    """A listed (or declared) date of birth: a full date, a month, a year, or a range of years."""

    year_from: int
    year_to: int
    month: int | None = None
    day: int | None = None

    @classmethod
    def of(cls, d: date) -> BirthDate:
        return cls(d.year, d.year, d.month, d.day)

    def text(self) -> str:
        if self.year_from != self.year_to:
            return f"{self.year_from}-{self.year_to}"
        if self.month and self.day:
            return f"{self.year_from:04d}-{self.month:02d}-{self.day:02d}"
        if self.month:
            return f"{self.year_from:04d}-{self.month:02d}"
        return f"{self.year_from:04d}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One listed party as the list publishes it. `names[0]` is the primary name; the rest are
    aliases. `weak_names` are low-quality aliases (UN "Low", OFAC "weak a.k.a."): a hit on one
    alone is at most a potential match."""

    entry_id: str
    entity_type: EntityType | None  # None: the list does not say
    names: tuple[str, ...]
    weak_names: tuple[str, ...] = ()
    birth_dates: tuple[BirthDate, ...] = ()
    nationalities: tuple[str, ...] = ()
    programs: tuple[str, ...] = ()
    source: str = ""
    # Entity List (15 CFR 744.11, Supplement No. 4 to part 744): what a licence is needed for,
    # and the licence review policy. Empty for lists that carry neither.
    license_requirement: str = ""
    license_policy: str = ""

    @property
    def primary_name(self) -> str:
        return self.names[0]


@dataclass(frozen=True, slots=True)
class ListHolding:
    """Ownership the list data carries (an FtM `Ownership` record): `owner_id` holds `percent`
    of `asset_id`. Either may be an unlisted party, so names travel with the ids."""

    record_id: str
    owner_id: str
    owner_kind: str  # person | entity
    owner_name: str
    asset_id: str
    asset_name: str
    asset_country: str | None
    percent: float


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What a loader read: the entries, and what it skipped (with counts, never silently)."""

    entries: tuple[Entry, ...]
    skipped: dict[str, int] = field(default_factory=dict)
    ownership: tuple[ListHolding, ...] = ()


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    birth_date: date | None = None
    nationalities: tuple[str, ...] = ()
    entity_type: EntityType | None = None


@dataclass(frozen=True, slots=True)
class Match:
    list_name: str
    entry_id: str
    name: str
    matched_name: str
    score: float
    outcome: Outcome
    why: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "list": self.list_name,
            "entry_id": self.entry_id,
            "name": self.name,
            "matched_name": self.matched_name,
            "score": round(self.score, 3),
            "why": list(self.why),
        }


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    query: str
    status: Outcome
    matches: tuple[Match, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "query": self.query,
            "status": self.status.value,
            "matches": [m.as_json() for m in self.matches],
        }


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Score cut-offs for the three outcomes (operator configuration: `[screening]`)."""

    match: float = 0.92
    potential: float = 0.80
    max_matches: int = 5
    ownership_review: float = 25.0  # percent held by blocked owners that sends an org to review

    def outcome(self, score: float) -> Outcome:
        if score >= self.match:
            return Outcome.MATCH
        if score >= self.potential:
            return Outcome.POTENTIAL_MATCH
        return Outcome.CLEAR
