"""OpenSanctions data in FollowTheMoney JSON lines (https://followthemoney.tech/explorer/):
one entity per line, `{"id", "schema", "properties": {prop: [values]}, "target"?, "datasets"?}`.

Only named parties are screened: Person, Organization, Company, LegalEntity, PublicBody, Vessel,
Airplane. Other schemata (Sanction, Address, Ownership, ...) and entities explicitly marked
`"target": false` are skipped and counted. Properties used: name, alias, previousName, weakAlias,
birthDate, nationality, citizenship, country, jurisdiction, program/programId, topics.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import orjson

from clearance.errors import InvalidInput
from clearance.screening.countries import country_code
from clearance.screening.dates import parse_birth_date
from clearance.screening.models import EntityType, Entry, LoadReport

_SCHEMATA = {
    "Person": EntityType.PERSON,
    "Organization": EntityType.ENTITY,
    "Company": EntityType.ENTITY,
    "LegalEntity": EntityType.ENTITY,
    "PublicBody": EntityType.ENTITY,
    "Vessel": EntityType.VESSEL,
    "Airplane": EntityType.AIRCRAFT,
}


def load(data: bytes) -> LoadReport:
    skipped: dict[str, int] = defaultdict(int)
    entries = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"FTM line {number} is not JSON: {exc}") from exc
        if not isinstance(record, dict) or "schema" not in record:
            raise InvalidInput(f"FTM line {number} is not a FollowTheMoney entity")
        schema = str(record["schema"])
        if schema not in _SCHEMATA:
            skipped[f"{schema} records"] += 1
            continue
        if record.get("target") is False:
            skipped["non-target entities"] += 1
            continue
        entry = _entry(record, _SCHEMATA[schema])
        if entry is None:
            skipped["entities without a name"] += 1
        else:
            entries.append(entry)
    return LoadReport(tuple(entries), dict(skipped))


def _values(props: Mapping[str, object], *keys: str) -> list[str]:
    out: list[str] = []
    for key in keys:
        value = props.get(key)
        if isinstance(value, list):
            out.extend(str(v).strip() for v in value if str(v).strip())
    return list(dict.fromkeys(out))


def _entry(record: Mapping[str, object], entity_type: EntityType) -> Entry | None:
    props = record.get("properties")
    if not isinstance(props, Mapping):
        return None
    names = _values(props, "name", "alias", "previousName")
    if not names:
        return None
    weak = [w for w in _values(props, "weakAlias") if w not in names]
    births = (parse_birth_date(d[:10]) for d in _values(props, "birthDate"))
    nat_keys: tuple[str, ...] = ("nationality", "citizenship")
    if entity_type is not EntityType.PERSON:
        nat_keys = (*nat_keys, "country", "jurisdiction")
    codes = {c for c in (country_code(v) for v in _values(props, *nat_keys)) if c}
    datasets = record.get("datasets")
    return Entry(
        entry_id=str(record.get("id", "")),
        entity_type=entity_type,
        names=tuple(names),
        weak_names=tuple(weak),
        birth_dates=tuple(dict.fromkeys(b for b in births if b is not None)),
        nationalities=tuple(sorted(codes)),
        programs=tuple(_values(props, "programId", "program")),
        source=", ".join(str(d) for d in datasets) if isinstance(datasets, list) else "",
    )
