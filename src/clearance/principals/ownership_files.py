"""Ownership files an organisation hands over (KYB), read into parties and direct holdings.

- FollowTheMoney JSON lines (https://followthemoney.tech/explorer/schemata/Ownership/): `Person`,
  `Company` / `Organization` / `LegalEntity` / `PublicBody`, and `Ownership` (`owner` holds
  `percentage` of `asset`). A record is named by its line: "line 7".
- Beneficial Ownership Data Standard 0.4 (a JSON array of statements, or one statement a line):
  entity, person and relationship records by `recordId`, the latest statement of a record
  winning and a `closed` record dropped; a relationship's `shareholding` interests give the
  share (`share.exact`, else its lower bound `minimum` / `exclusiveMinimum`). A statement is
  named by its `statementId`.

Only direct holdings make the graph: the rules count a chain through the companies in it
(screening/ownership.py), so an `indirect` interest (a figure already computed along a chain)
is skipped and counted, as are holdings with no share given and ones whose end date has passed.
Everything else that is wrong is an error naming the record: not JSON, a record missing its
id or name, a reference to a party the file does not describe, a share that is no share or is
over 100 %, shares in one company adding up to over 100 %, an ownership cycle.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from clearance.errors import InvalidInput
from clearance.screening.countries import country_code
from clearance.screening.shares import parse_share

FORMATS = ("ftm", "bods")
_SLACK = 0.001  # rounding in declared percentages
_ENTITY_SCHEMATA = {"Company", "Organization", "LegalEntity", "PublicBody"}


@dataclass(frozen=True, slots=True)
class Party:
    ref: str  # the id in the file (FtM id, BODS recordId)
    kind: str  # person | entity
    name: str
    country: str | None
    registrations: tuple[str, ...]
    record: str


@dataclass(frozen=True, slots=True)
class Holding:
    owner: str
    asset: str
    percent: float
    record: str


@dataclass(frozen=True, slots=True)
class OwnershipFile:
    parties: Mapping[str, Party]
    holdings: tuple[Holding, ...]
    subject: str | None = None  # BODS declarationSubject, when the file names one
    skipped: dict[str, int] = field(default_factory=dict)


def parse(fmt: str, data: bytes) -> OwnershipFile:
    """Read and check a whole file; InvalidInput names the first bad record."""
    if fmt == "ftm":
        found = _ftm(data)
    elif fmt == "bods":
        found = _bods(data)
    else:
        raise InvalidInput(f"--format is ftm or bods, not {fmt!r}")
    check(found)
    return found


def check(found: OwnershipFile) -> None:
    """References resolve, no company is over 100 % owned, no cycle."""
    for h in found.holdings:
        for role, ref in (("owner", h.owner), ("asset", h.asset)):
            if ref not in found.parties:
                raise InvalidInput(f"{h.record}: {role} {ref!r} is not described in the file")
        if found.parties[h.asset].kind != "entity":
            raise InvalidInput(f"{h.record}: a person ({found.parties[h.asset].name}) is owned")
    totals: dict[str, list[Holding]] = defaultdict(list)
    for h in found.holdings:
        totals[h.asset].append(h)
    for asset, held in totals.items():
        total = sum(h.percent for h in held)
        if total > 100 + _SLACK:
            records = ", ".join(h.record for h in held)
            raise InvalidInput(
                f"{found.parties[asset].name!r} ({asset}) would be {total:g} % owned"
                f" ({records}): shares add up to at most 100 %"
            )
    cycle = find_cycle((h.owner, h.asset, h.record) for h in found.holdings)
    if cycle:
        raise InvalidInput(f"ownership cycle: {' -> '.join(cycle)}")


def find_cycle(edges: Iterable[tuple[object, object, str]]) -> list[str]:
    """The records of one cycle among (owner, asset, record) edges, or [] when there is none."""
    out: dict[object, list[tuple[object, str]]] = defaultdict(list)
    for owner, asset, record in edges:
        out[owner].append((asset, record))
    state: dict[object, int] = {}  # 1 on the current path, 2 done
    for start in list(out):
        if state.get(start):
            continue
        path: list[tuple[object, str]] = [(start, "")]
        stack = [iter(out[start])]
        state[start] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()[0]] = 2
                stack.pop()
                continue
            node, record = step
            if state.get(node) == 1:
                at = next(i for i, (n, _) in enumerate(path) if n == node)
                return [r for _, r in path[at + 1 :]] + [record]
            if not state.get(node):
                state[node] = 1
                path.append((node, record))
                stack.append(iter(out.get(node, ())))
    return []


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


# FollowTheMoney


def _ftm(data: bytes) -> OwnershipFile:
    parties: dict[str, Party] = {}
    holdings: list[Holding] = []
    skipped: dict[str, int] = defaultdict(int)
    today = _today()
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"{where} is not JSON: {exc}") from exc
        if not isinstance(record, dict) or not isinstance(record.get("schema"), str):
            raise InvalidInput(f"{where} is not a FollowTheMoney entity")
        schema = record["schema"]
        props = record.get("properties")
        if not isinstance(props, dict):
            raise InvalidInput(f"{where}: {schema} has no properties")
        ref = record.get("id")
        if not isinstance(ref, str) or not ref:
            raise InvalidInput(f"{where}: {schema} has no id")
        if schema == "Ownership":
            owner, asset = _one(props, "owner"), _one(props, "asset")
            if not owner or not asset:
                raise InvalidInput(f"{where}: an Ownership needs an owner and an asset")
            if any(end[:10] < today for end in _all(props, "endDate")):
                skipped["holdings that have ended"] += 1
                continue
            shares = _all(props, "percentage")
            if not shares:
                skipped["holdings without a share"] += 1
                continue
            holdings.append(Holding(owner, asset, _share(shares[0], where), where))
        elif schema == "Person" or schema in _ENTITY_SCHEMATA:
            name = _one(props, "name")
            if not name:
                raise InvalidInput(f"{where}: {schema} {ref!r} has no name")
            person = schema == "Person"
            keys = ("nationality", "citizenship", "country") if person else (
                "jurisdiction", "country", "mainCountry"
            )  # fmt: skip
            codes = [c for c in (country_code(v) for v in _all(props, *keys)) if c]
            regs = _all(props, "registrationNumber", "leiCode", "taxNumber")
            kind = "person" if person else "entity"
            parties[ref] = Party(ref, kind, name, codes[0] if codes else None, tuple(regs), where)
        else:
            skipped[f"{schema} records"] += 1
    return OwnershipFile(parties, tuple(h for h in holdings if h.percent > 0), None, dict(skipped))


def _all(props: Mapping[str, Any], *keys: str) -> list[str]:
    out: list[str] = []
    for key in keys:
        value = props.get(key)
        if isinstance(value, list):
            out.extend(str(v).strip() for v in value if str(v).strip())
    return out


def _one(props: Mapping[str, Any], key: str) -> str:
    values = _all(props, key)
    return values[0] if values else ""


def _share(text: str, where: str) -> float:
    try:
        return parse_share(text)
    except ValueError as exc:
        raise InvalidInput(f"{where}: {exc}") from exc


# Beneficial Ownership Data Standard 0.4


def _statements(data: bytes) -> list[tuple[str, Any]]:
    text = data.lstrip()
    if text.startswith(b"["):
        try:
            items = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"not BODS JSON: {exc}") from exc
        return [(f"statement #{i}", s) for i, s in enumerate(items, 1)]
    out = []
    for number, line in enumerate(data.splitlines(), 1):
        if line.strip():
            try:
                out.append((f"line {number}", orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                raise InvalidInput(f"line {number} is not JSON: {exc}") from exc
    return out


def _bods(data: bytes) -> OwnershipFile:
    records: dict[str, tuple[str, str, Mapping[str, Any]]] = {}  # recordId -> type, where, details
    subjects: set[str] = set()
    for where, statement in _statements(data):
        if not isinstance(statement, dict):
            raise InvalidInput(f"{where} is not a BODS statement")
        sid = statement.get("statementId")
        named = f"statement {sid}" if isinstance(sid, str) and sid else where
        rtype, rid = statement.get("recordType"), statement.get("recordId")
        details = statement.get("recordDetails")
        if rtype not in ("entity", "person", "relationship"):
            raise InvalidInput(f"{named}: recordType is entity, person or relationship (BODS 0.4)")
        if not isinstance(rid, str) or not rid or not isinstance(details, dict):
            raise InvalidInput(f"{named}: a statement needs a recordId and recordDetails")
        if isinstance(statement.get("declarationSubject"), str):
            subjects.add(statement["declarationSubject"])
        if statement.get("recordStatus") == "closed":
            records.pop(rid, None)
        else:
            records[rid] = (rtype, named, details)  # the latest statement of a record wins
    parties: dict[str, Party] = {}
    holdings: list[Holding] = []
    skipped: dict[str, int] = defaultdict(int)
    for rid, (rtype, named, details) in records.items():
        if rtype == "relationship":
            holding = _relationship(details, named, skipped)
            if holding is not None:
                holdings.append(holding)
        else:
            parties[rid] = _bods_party(rid, rtype, details, named)
    subject = next(iter(subjects)) if len(subjects) == 1 else None
    return OwnershipFile(parties, tuple(holdings), subject, dict(skipped))


def _bods_party(rid: str, rtype: str, details: Mapping[str, Any], named: str) -> Party:
    if rtype == "entity":
        name = details.get("name")
        places = [details.get("jurisdiction"), details.get("incorporatedInJurisdiction")]
        regs = [str(i.get("id")) for i in details.get("identifiers") or () if isinstance(i, dict)]
    else:
        full = [n for n in details.get("names") or () if isinstance(n, dict)]
        name = next(
            (n.get("fullName") or " ".join(filter(None, (n.get("givenName"), n.get("familyName"))))
             for n in full), None,
        )  # fmt: skip
        places = list(details.get("nationalities") or ())
        regs = []
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{named}: {rtype} {rid!r} has no name")
    codes = [
        country_code(str(p.get("code") or p.get("name") or ""))
        for p in places if isinstance(p, dict)
    ]  # fmt: skip
    country = next((c for c in codes if c), None)
    return Party(rid, rtype, name.strip(), country, tuple(r for r in regs if r), named)


def _relationship(
    details: Mapping[str, Any], named: str, skipped: dict[str, int]
) -> Holding | None:
    subject, party = details.get("subject"), details.get("interestedParty")
    if not isinstance(subject, str) or not isinstance(party, str):
        skipped["relationships with an unspecified party"] += 1
        return None
    today = _today()
    shares: list[float] = []
    for interest in details.get("interests") or ():
        if not isinstance(interest, dict) or interest.get("type") != "shareholding":
            continue
        if interest.get("directOrIndirect") == "indirect":
            skipped["indirect interests (the chain counts instead)"] += 1
            continue
        if str(interest.get("endDate") or "9999")[:10] < today:
            skipped["holdings that have ended"] += 1
            continue
        share = interest.get("share")
        if not isinstance(share, dict):
            skipped["holdings without a share"] += 1
            continue
        low = next((share[k] for k in ("exact", "minimum", "exclusiveMinimum") if k in share), None)
        if low is None:
            skipped["holdings without a share"] += 1
            continue
        if isinstance(low, bool) or not isinstance(low, int | float) or not 0 <= low <= 100:
            raise InvalidInput(f"{named}: share {low!r} is not a percentage from 0 to 100")
        shares.append(float(low))
    if not shares:
        if not any(isinstance(i, dict) and i.get("type") == "shareholding"
                   for i in details.get("interests") or ()):  # fmt: skip
            skipped["relationships without a shareholding (control only)"] += 1
        return None
    if max(shares) <= 0:
        return None
    # Several shareholding interests between the same two parties (share classes, or the same
    # holding stated twice) count once, at the largest: never added up.
    return Holding(party, subject, max(shares), named)
