"""The US Consolidated Screening List, trade.gov CSV form
(https://www.trade.gov/consolidated-screening-list; columns `_id, source, entity_number, type,
programs, name, ..., license_requirement, license_policy, ..., alt_names, citizenships,
dates_of_birth, nationalities, ...`). Multi-valued fields are joined with "; ".

Quirks kept in mind: the header row is repeated inside the file, short rows occur, the type is
blank for most Entity List rows, and the Entity List's licence requirement and licence review
policy (15 CFR 744.11, Supplement No. 4 to part 744) are kept on the entry.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict

from clearance.errors import InvalidInput
from clearance.screening.countries import country_code
from clearance.screening.dates import parse_birth_date
from clearance.screening.models import EntityType, Entry, LoadReport

_TYPES = {
    "individual": EntityType.PERSON,
    "entity": EntityType.ENTITY,
    "vessel": EntityType.VESSEL,
    "aircraft": EntityType.AIRCRAFT,
}
REQUIRED = ("_id", "source", "name")


def load(data: bytes) -> LoadReport:
    try:
        return _load(data.decode("utf-8-sig", errors="replace"))
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        raise InvalidInput(f"not a CSL CSV: {exc}") from exc


def _load(text: str) -> LoadReport:
    # newline="": the csv module does its own line splitting (a bare CR is otherwise an error).
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or ())]
    if missing:
        raise InvalidInput(f"not a CSL CSV: missing column(s) {', '.join(missing)}")
    skipped: dict[str, int] = defaultdict(int)
    entries = []
    for raw in reader:
        row = {k: (v or "").strip() for k, v in raw.items() if isinstance(k, str)}
        if row["_id"] == "_id":
            skipped["repeated header rows"] += 1
            continue
        if not row["name"]:
            skipped["rows without a name"] += 1
            continue
        entries.append(_entry(row))
    return LoadReport(tuple(entries), dict(skipped))


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(";") if v.strip()]


def _entry(row: dict[str, str]) -> Entry:
    births = (parse_birth_date(d) for d in _split(row.get("dates_of_birth", "")))
    nats = _split(row.get("nationalities", "")) + _split(row.get("citizenships", ""))
    codes = {c for c in (country_code(n) for n in nats) if c}
    names = [row["name"], *_split(row.get("alt_names", ""))]
    return Entry(
        entry_id=row["_id"],
        entity_type=_TYPES.get(row.get("type", "").lower()),
        names=tuple(dict.fromkeys(names)),
        birth_dates=tuple(dict.fromkeys(b for b in births if b is not None)),
        nationalities=tuple(sorted(codes)),
        programs=tuple(_split(row.get("programs", "").replace(",", ";"))),
        source=row["source"],
        license_requirement=row.get("license_requirement", ""),
        license_policy=row.get("license_policy", ""),
    )
