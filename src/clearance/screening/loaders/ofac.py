"""OFAC SDN in its legacy delimited form: `sdn.csv`, `alt.csv`, `add.csv`
(https://ofac.treasury.gov/specially-designated-nationals-list-data-formats-data-schemas).

The files have no header, write `-0-` for an empty field (often with a trailing space), end with a
0x1A (DOS end-of-file) byte, and keep dates of birth and nationalities inside the free-text
remarks ("DOB 10 Dec 1948; alt. DOB 1950; nationality Iran; citizen Iraq"). Weak aliases live only
in the remarks, quoted: "a.k.a. 'BNC'". Alias and address rows whose entry is not in the SDN file
are skipped and counted.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

from clearance.errors import InvalidInput
from clearance.screening.countries import country_code
from clearance.screening.dates import parse_birth_date
from clearance.screening.models import BirthDate, EntityType, Entry, LoadReport

# Column counts tell the three files apart, whatever they are called.
SDN_COLUMNS, ALT_COLUMNS, ADD_COLUMNS = 12, 5, 6
_TYPES = {
    "individual": EntityType.PERSON,
    "vessel": EntityType.VESSEL,
    "aircraft": EntityType.AIRCRAFT,
    "": EntityType.ENTITY,
}
_DOB = re.compile(r"\bDOB\s+([^;]+)")
_NATIONALITY = re.compile(r"\b(?:nationality|citizen)\s+([^;]+)")
_WEAK_AKA = re.compile(r"\b[afn]\.k\.a\.\s+'([^']+)'")


def rows(data: bytes) -> list[list[str]]:
    """Parse one OFAC delimited file into rows of cleaned fields ('' for `-0-`)."""
    text = data.decode("utf-8", errors="replace").replace("\x1a", "")
    out = []
    # newline="": the csv module does its own line splitting (a bare CR inside a field is
    # otherwise an error); csv.Error is still raised for fields over its size limit.
    try:
        for row in csv.reader(io.StringIO(text, newline="")):
            if not row or all(not f.strip() for f in row):
                continue
            out.append([_field(f) for f in row])
    except csv.Error as exc:
        raise InvalidInput(f"not an OFAC delimited file: {exc}") from exc
    return out


def _field(value: str) -> str:
    value = value.strip()
    return "" if value == "-0-" else value


def load(files: Sequence[tuple[str, bytes]]) -> LoadReport:
    """`files`: (name, content) pairs; exactly one must be the 12-column `sdn.csv`."""
    sdn: list[list[str]] = []
    alt: list[list[str]] = []
    add: list[list[str]] = []
    for name, data in files:
        parsed = rows(data)
        width = len(parsed[0]) if parsed else 0
        target = {SDN_COLUMNS: sdn, ALT_COLUMNS: alt, ADD_COLUMNS: add}.get(width)
        if target is None:
            raise InvalidInput(f"{name}: not an OFAC sdn/alt/add file ({width} columns)")
        target.extend(parsed)
    if not sdn:
        raise InvalidInput("an OFAC SDN load needs sdn.csv")
    skipped: dict[str, int] = defaultdict(int)
    known = {r[0] for r in sdn}
    aliases = _by_entry(alt, known, skipped, "alias rows for entries not in sdn.csv", 3)
    countries = _by_entry(add, known, skipped, "address rows for entries not in sdn.csv", 4)
    entries = []
    for row in sdn:
        if len(row) != SDN_COLUMNS or not row[1]:
            skipped["malformed sdn rows"] += 1
            continue
        entries.append(_entry(row, aliases.get(row[0], []), countries.get(row[0], [])))
    return LoadReport(tuple(entries), dict(skipped))


def _by_entry(
    rows_: Iterable[list[str]],
    known: set[str],
    skipped: dict[str, int],
    reason: str,
    column: int,
) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for row in rows_:
        if row[0] not in known:
            skipped[reason] += 1
        elif len(row) > column and row[column]:
            out[row[0]].append(row[column])
    return out


def _entry(row: list[str], aliases: list[str], address_countries: list[str]) -> Entry:
    ent_num, name, sdn_type, program = row[0], row[1], row[2].lower(), row[3]
    remarks = row[11]
    entity_type = _TYPES.get(sdn_type, EntityType.ENTITY)
    nationalities = _codes(m.group(1) for m in _NATIONALITY.finditer(remarks))
    if entity_type is not EntityType.PERSON and not nationalities:
        nationalities = _codes(address_countries)
    weak = tuple(m.group(1).strip() for m in _WEAK_AKA.finditer(remarks))
    return Entry(
        entry_id=ent_num,
        entity_type=entity_type,
        names=_unique([name, *aliases]),
        weak_names=tuple(w for w in _unique(weak) if w not in aliases and w != name),
        birth_dates=_birth_dates(remarks),
        nationalities=nationalities,
        programs=tuple(p.strip("[] ") for p in program.split("] [") if p.strip("[] ")),
        source="OFAC SDN",
    )


def _birth_dates(remarks: str) -> tuple[BirthDate, ...]:
    found = (parse_birth_date(m.group(1)) for m in _DOB.finditer(remarks))
    return tuple(dict.fromkeys(d for d in found if d is not None))


def _codes(names: Iterable[str]) -> tuple[str, ...]:
    codes = (country_code(n.strip().rstrip(".")) for n in names)
    return tuple(sorted({c for c in codes if c}))


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
