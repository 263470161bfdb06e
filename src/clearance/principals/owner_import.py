"""`clearance orgs owners import ORG FILE --format ftm|bods`: an organisation's ownership as a
file describes it (principals/ownership_files.py), written in the caller's transaction.

Which party of the file is the organisation: the entity with its registration number, else its
name or legal name (case and punctuation aside), else the BODS `declarationSubject`, else the one
company that owns nothing in the file. Another entity that is a Clearance organisation (same
registration number, name or legal name) is linked as that organisation, so `--org` chains
form; other entities and persons are owners by name. The organisation's direct owners become
declared owners (`owners list` shows them with the file); holdings further up the chain are kept
with the import. A new import for the organisation replaces the previous one's owners and
holdings; owners declared by hand stay. Holdings in another Clearance organisation are that
organisation's to declare: skipped and counted.

Each import is evidence: the file's name and SHA-256, who imported it and when. The caller
screens ownership again and writes the audit entry, as for `owners add`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.errors import InvalidInput
from clearance.principals.ownership_files import Holding, OwnershipFile, Party, find_cycle, parse
from clearance.principals.service import get_org
from clearance.screening.ownership import name_key
from clearance.store.tables import imported_holdings, org_owners, orgs, ownership_imports

_SLACK = 0.001


@dataclass(frozen=True, slots=True)
class ImportResult:
    import_id: int
    org: str
    format: str
    file_name: str
    sha256: str
    root: str  # the organisation's id in the file
    owners: int  # declared owners written (the organisation's direct owners)
    holdings: int  # holdings further up the chain
    linked_orgs: tuple[str, ...]  # Clearance organisations the file names as owners
    replaced: int  # owners and holdings of the previous import, now gone
    skipped: Mapping[str, int]

    def as_json(self) -> dict[str, object]:
        return {
            "import_id": self.import_id,
            "org": self.org,
            "format": self.format,
            "file": self.file_name,
            "sha256": self.sha256,
            "root": self.root,
            "owners": self.owners,
            "holdings": self.holdings,
            "linked_orgs": list(self.linked_orgs),
            "replaced": self.replaced,
            "skipped": dict(self.skipped),
        }

    def audit_details(self) -> dict[str, object]:
        """What the `org.owner.import` entry records: the file and the counts, no names."""
        return {
            "org": self.org, "format": self.format, "file": self.file_name,
            "sha256": self.sha256, "owners": self.owners, "holdings": self.holdings,
            "replaced": self.replaced, "skipped": dict(self.skipped),
        }  # fmt: skip


def import_owners(
    conn: Connection, org_name: str, fmt: str, file_name: str, data: bytes, *, actor: str
) -> ImportResult:
    org = get_org(conn, org_name)
    found = parse(fmt, data)
    known = _OrgIndex(conn)
    root = _root(found, org.id, known)
    linked = {
        p.ref: oid
        for p in found.parties.values()
        if p.kind == "entity" and p.ref != root and (oid := known.match(p)) is not None
    }
    linked[root] = org.id
    replaced = _drop_previous(conn, org.id)
    skipped = dict(found.skipped)
    mine = [h for h in found.holdings if not (h.asset in linked and h.asset != root)]
    if len(mine) < len(found.holdings):
        skipped["holdings in another Clearance organisation (declare them there)"] = len(
            found.holdings
        ) - len(mine)
    _check_total(conn, org.id, org.name, [h for h in mine if h.asset == root])
    _check_cycles(conn, found, linked, mine)
    now = datetime.now(UTC)
    import_id = conn.execute(
        sa.insert(ownership_imports)
        .values(
            org_id=org.id,
            format=fmt,
            file_name=file_name[:400],
            sha256=hashlib.sha256(data).hexdigest(),
            root_ref=root,
            counts={"skipped": skipped},
            imported_by=actor,
            imported_at=now,
        )
        .returning(ownership_imports.c.id)
    ).scalar_one()
    direct, further = [], []
    for h in mine:
        owner = found.parties[h.owner]
        owner_org = linked.get(h.owner)
        name = known.names[owner_org] if owner_org is not None else owner.name
        kind = "org" if owner_org is not None else owner.kind
        if h.asset == root:
            direct.append({
                "org_id": org.id, "kind": kind, "name": name[:400], "owner_org_id": owner_org,
                "percent": h.percent, "country": owner.country, "declared_by": actor,
                "declared_at": now, "import_id": import_id, "ref": h.owner,
            })  # fmt: skip
        else:
            further.append({
                "import_id": import_id, "record": h.record[:200], "asset_ref": h.asset,
                "asset_name": found.parties[h.asset].name[:400], "owner_ref": h.owner,
                "owner_kind": kind, "owner_name": name[:400], "owner_country": owner.country,
                "owner_org_id": owner_org, "percent": h.percent,
            })  # fmt: skip
    if direct:
        conn.execute(sa.insert(org_owners), direct)
    if further:
        conn.execute(sa.insert(imported_holdings), further)
    return ImportResult(
        import_id=int(import_id),
        org=org.name,
        format=fmt,
        file_name=file_name,
        sha256=hashlib.sha256(data).hexdigest(),
        root=root,
        owners=len(direct),
        holdings=len(further),
        linked_orgs=tuple(sorted({known.names[o] for r, o in linked.items() if r != root})),
        replaced=replaced,
        skipped=skipped,
    )


class _OrgIndex:
    """Clearance organisations by registration number and by name or legal name."""

    def __init__(self, conn: Connection) -> None:
        self.names: dict[int, str] = {}
        self.by_reg: dict[str, int] = {}
        self.by_name: dict[str, int] = {}
        self.rows = conn.execute(
            sa.select(orgs.c.id, orgs.c.name, orgs.c.legal_name, orgs.c.registration_number)
        ).all()
        for r in self.rows:
            self.names[r.id] = r.name
            if r.registration_number:
                self.by_reg[_reg(r.registration_number)] = r.id
            for name in (r.name, r.legal_name):
                if name:
                    self.by_name.setdefault(name_key(name), r.id)

    def match(self, party: Party) -> int | None:
        for reg in party.registrations:
            if _reg(reg) in self.by_reg:
                return self.by_reg[_reg(reg)]
        return self.by_name.get(name_key(party.name))

    def is_org(self, party: Party, org_id: int) -> bool:
        row = next(r for r in self.rows if r.id == org_id)
        if row.registration_number and any(
            _reg(x) == _reg(row.registration_number) for x in party.registrations
        ):
            return True
        return name_key(party.name) in {name_key(n) for n in (row.name, row.legal_name) if n}


def _reg(number: str) -> str:
    return "".join(ch for ch in number.upper() if ch.isalnum())


def _root(found: OwnershipFile, org_id: int, known: _OrgIndex) -> str:
    entities = [p for p in found.parties.values() if p.kind == "entity"]
    named = [p for p in entities if known.is_org(p, org_id)]
    if len(named) > 1:
        records = ", ".join(p.record for p in named)
        raise InvalidInput(
            f"several entities in the file could be {known.names[org_id]!r}: {records}"
        )
    if named:
        return named[0].ref
    subject = found.parties.get(found.subject or "")
    if subject is not None and subject.kind == "entity":
        return subject.ref
    owners = {h.owner for h in found.holdings}
    tops = [
        p for p in entities if p.ref not in owners and any(h.asset == p.ref for h in found.holdings)
    ]
    if len(tops) == 1:
        return tops[0].ref
    raise InvalidInput(
        f"no entity in the file is {known.names[org_id]!r} (by registration number, name or"
        " legal name), and the file names no single company at the top"
    )


def _drop_previous(conn: Connection, org_id: int) -> int:
    previous = [
        int(i)
        for i in conn.scalars(
            sa.select(ownership_imports.c.id).where(ownership_imports.c.org_id == org_id)
        )
    ]
    if not previous:
        return 0
    count = 0
    for table in (org_owners, imported_holdings):
        count += conn.execute(sa.delete(table).where(table.c.import_id.in_(previous))).rowcount
    conn.execute(sa.delete(ownership_imports).where(ownership_imports.c.id.in_(previous)))
    return count


def _check_total(conn: Connection, org_id: int, org_name: str, held: list[Holding]) -> None:
    declared = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(org_owners.c.percent), 0.0)).where(
            org_owners.c.org_id == org_id
        )
    ).scalar_one()
    total = float(declared) + sum(h.percent for h in held)
    if total > 100 + _SLACK:
        records = ", ".join(h.record for h in held)
        raise InvalidInput(
            f"{org_name!r} would be {total:g} % owned ({float(declared):g} % declared by hand,"
            f" the rest by {records}): shares add up to at most 100 %"
        )


def _check_cycles(
    conn: Connection,
    found: OwnershipFile,
    linked: Mapping[str, int],
    held: list[Holding],
) -> None:
    """No cycle through the file's holdings and the ownership already stored."""

    def node(ref: str) -> object:
        return ("org", linked[ref]) if ref in linked else ("file", ref)

    edges = list(_stored_edges(conn))
    edges += [(node(h.owner), node(h.asset), h.record) for h in held]
    cycle = find_cycle(edges)
    if cycle:
        raise InvalidInput(f"ownership cycle: {' -> '.join(cycle)}")


def _stored_edges(conn: Connection) -> Iterator[tuple[object, object, str]]:
    for o in conn.execute(sa.select(org_owners)):
        owner: object = None
        if o.owner_org_id is not None:
            owner = ("org", o.owner_org_id)
        elif o.import_id is not None:
            owner = ("imp", o.import_id, o.ref)
        if owner is not None:
            yield owner, ("org", o.org_id), f"declared owner {o.id} of org {o.org_id}"
    for h in conn.execute(sa.select(imported_holdings)):
        owner = ("org", h.owner_org_id) if h.owner_org_id else ("imp", h.import_id, h.owner_ref)
        yield owner, ("imp", h.import_id, h.asset_ref), f"import {h.import_id} {h.record}"
