"""OpenSanctions data in FollowTheMoney JSON lines (https://followthemoney.tech/explorer/):
one entity per line, `{"id", "schema", "properties": {prop: [values]}, "target"?, "datasets"?}`.

Only named parties are screened: Person, Organization, Company, LegalEntity, PublicBody, Vessel,
Airplane. Other schemata (Sanction, Address, ...) and entities explicitly marked `"target": false`
are skipped and counted. Properties used: name, alias, previousName, weakAlias, birthDate,
nationality, citizenship, country, jurisdiction, program/programId, topics.

`Ownership` records (owner, asset, percentage, endDate) are kept as the list's ownership graph
(screening/ownership.py), between any two named parties of the file, listed or not: an unlisted
company owned by a listed one is restricted under the 50 % rules without being an entry. Records
naming a party not in the file, without a readable share, or with an end date passed, are
skipped and counted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime

import orjson

from clearance.errors import InvalidInput
from clearance.screening.countries import country_code
from clearance.screening.dates import parse_birth_date
from clearance.screening.models import EntityType, Entry, ListHolding, LoadReport
from clearance.screening.shares import parse_share

_SCHEMATA = {
    "Person": EntityType.PERSON,
    "Organization": EntityType.ENTITY,
    "Company": EntityType.ENTITY,
    "LegalEntity": EntityType.ENTITY,
    "PublicBody": EntityType.ENTITY,
    "Vessel": EntityType.VESSEL,
    "Airplane": EntityType.AIRCRAFT,
}


_OWNABLE = {"Organization", "Company", "LegalEntity", "PublicBody"}


def load(data: bytes) -> LoadReport:
    skipped: dict[str, int] = defaultdict(int)
    entries = []
    parties: dict[str, tuple[str, str, str | None]] = {}  # id -> kind, name, country
    ownerships: list[Mapping[str, object]] = []
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
        if schema == "Ownership":
            ownerships.append(record)
            continue
        if schema not in _SCHEMATA:
            skipped[f"{schema} records"] += 1
            continue
        party = _party(record, schema)
        if party is not None:
            parties[str(record.get("id", ""))] = party
        if record.get("target") is False:
            skipped["non-target entities"] += 1
            continue
        entry = _entry(record, _SCHEMATA[schema])
        if entry is None:
            skipped["entities without a name"] += 1
        else:
            entries.append(entry)
    holdings = tuple(_holdings(ownerships, parties, skipped))
    return LoadReport(tuple(entries), dict(skipped), holdings)


def _party(record: Mapping[str, object], schema: str) -> tuple[str, str, str | None] | None:
    """A party an Ownership record may name: person or ownable entity, with a name."""
    props = record.get("properties")
    if not isinstance(props, Mapping) or schema not in {"Person", *_OWNABLE}:
        return None
    names = _values(props, "name", "alias")
    if not names:
        return None
    codes = [c for c in (country_code(v) for v in _values(props, "country", "jurisdiction")) if c]
    return ("person" if schema == "Person" else "entity", names[0], codes[0] if codes else None)


def _holdings(
    records: list[Mapping[str, object]],
    parties: Mapping[str, tuple[str, str, str | None]],
    skipped: dict[str, int],
) -> list[ListHolding]:
    today = datetime.now(UTC).date().isoformat()
    out = []
    for record in records:
        props = record.get("properties")
        props = props if isinstance(props, Mapping) else {}
        owner = parties.get(next(iter(_values(props, "owner")), ""))
        asset = parties.get(next(iter(_values(props, "asset")), ""))
        if owner is None or asset is None or asset[0] != "entity":
            skipped["Ownership records naming a party not in the file"] += 1
            continue
        if any(end[:10] < today for end in _values(props, "endDate")):
            skipped["Ownership records that have ended"] += 1
            continue
        share = None
        for text in _values(props, "percentage"):
            try:
                share = parse_share(text)
                break
            except ValueError:
                continue
        if share is None:
            skipped["Ownership records without a readable share"] += 1
            continue
        out.append(
            ListHolding(
                record_id=str(record.get("id", "")),
                owner_id=_values(props, "owner")[0],
                owner_kind=owner[0],
                owner_name=owner[1],
                asset_id=_values(props, "asset")[0],
                asset_name=asset[1],
                asset_country=asset[2],
                percent=share,
            )
        )
    return out


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
