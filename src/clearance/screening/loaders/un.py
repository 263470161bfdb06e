"""The UN Security Council Consolidated List, XML form
(https://scsanctions.un.org/resources/xml/en/consolidated.xml, schema sc-sanctions.xsd).

People carry up to four name parts, the name in its original script, aliases graded "Good" or
"Low" (low-quality aliases are kept as weak names), nationalities as country names and dates of
birth as a DATE, a YEAR or a FROM_YEAR/TO_YEAR range. The reference number ("QDi.001") is the
entry id: it is what the Committee cites and it survives re-issues of the file.
"""

from __future__ import annotations

# The stdlib parser resolves no external entities, and expat >= 2.4.1 (bundled with CPython
# 3.11) caps entity expansion, so a hostile file cannot blow up memory (CVE-2013-0340).
import xml.etree.ElementTree as ET
from collections import defaultdict

from clearance.errors import InvalidInput
from clearance.screening.countries import country_code
from clearance.screening.dates import parse_birth_date, years_in
from clearance.screening.models import BirthDate, EntityType, Entry, LoadReport

_NAME_PARTS = ("FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME")


def load(data: bytes) -> LoadReport:
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, LookupError, ValueError) as exc:
        # LookupError: an unknown encoding in the XML declaration; ValueError: an encoding
        # expat cannot handle (multi-byte).
        raise InvalidInput(f"not a UN consolidated list XML: {exc}") from exc
    if root.tag != "CONSOLIDATED_LIST":
        raise InvalidInput(f"not a UN consolidated list XML (root element {root.tag})")
    skipped: dict[str, int] = defaultdict(int)
    entries: list[Entry] = []
    for node in root.iterfind("INDIVIDUALS/INDIVIDUAL"):
        _append(entries, skipped, _entry(node, EntityType.PERSON, "INDIVIDUAL"))
    for node in root.iterfind("ENTITIES/ENTITY"):
        _append(entries, skipped, _entry(node, EntityType.ENTITY, "ENTITY"))
    return LoadReport(tuple(entries), dict(skipped))


def _append(entries: list[Entry], skipped: dict[str, int], entry: Entry | None) -> None:
    if entry is None:
        skipped["records without a name"] += 1
    else:
        entries.append(entry)


def _text(node: ET.Element, path: str) -> str:
    return " ".join((node.findtext(path) or "").split())


def _entry(node: ET.Element, entity_type: EntityType, prefix: str) -> Entry | None:
    primary = " ".join(p for p in (_text(node, part) for part in _NAME_PARTS) if p)
    if not primary:
        return None
    strong: list[str] = [primary]
    weak: list[str] = []
    original = _text(node, "NAME_ORIGINAL_SCRIPT")
    if original:
        strong.append(original)
    for alias in node.iterfind(f"{prefix}_ALIAS"):
        name = _text(alias, "ALIAS_NAME")
        if name:
            (weak if _text(alias, "QUALITY").lower() == "low" else strong).append(name)
    nats = [_text(v, ".") for v in node.iterfind("NATIONALITY/VALUE")]
    if entity_type is EntityType.ENTITY:
        nats += [_text(a, "COUNTRY") for a in node.iterfind("ENTITY_ADDRESS")]
    codes = {c for c in (country_code(n) for n in nats if n) if c}
    names = tuple(dict.fromkeys(strong))
    return Entry(
        entry_id=_text(node, "REFERENCE_NUMBER") or _text(node, "DATAID"),
        entity_type=entity_type,
        names=names,
        weak_names=tuple(w for w in dict.fromkeys(weak) if w not in names),
        birth_dates=tuple(dict.fromkeys(_birth_dates(node))),
        nationalities=tuple(sorted(codes)),
        programs=(_text(node, "UN_LIST_TYPE"),) if _text(node, "UN_LIST_TYPE") else (),
        source="UN Security Council Consolidated List",
    )


def _birth_dates(node: ET.Element) -> list[BirthDate]:
    out = []
    for dob in node.iterfind("INDIVIDUAL_DATE_OF_BIRTH"):
        date_, year = _text(dob, "DATE"), _text(dob, "YEAR")
        start, end = _text(dob, "FROM_YEAR"), _text(dob, "TO_YEAR")
        found: BirthDate | None = None
        if date_:
            found = parse_birth_date(date_[:10])
        elif year:
            found = parse_birth_date(year)
        elif start and end:
            found = parse_birth_date(f"{start} to {end}")
        elif _text(dob, "NOTE"):
            found = years_in(_text(dob, "NOTE"))
        if found is not None:
            out.append(found)
    return out
