"""The CSCA master list in force: loaded by `clearance identity csca load FILE`, versioned like a
restricted-party list, and read by the verification worker for Passive Authentication.

A load whose certificate set differs from the newest version's (by digest: the SHA-256 over the
sorted DER of its certificates, whatever the file's form) becomes a new version, a row of
`csca_master_lists`; the load is then audited (`identity.csca.load`: version, digest, form,
counts, signers). The same set loaded again changes nothing. Cases verified by the chip record
the version that anchored them (`ChipCheck.master_list_version`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from clearance.audit.entries import admin_action
from clearance.audit.sink import AuditSink
from clearance.identity.chip import MasterListFormat, PaPolicy, masterlist
from clearance.identity.models import TrustAnchors
from clearance.identity.tables import csca_master_lists
from clearance.store import reading


@dataclass(frozen=True, slots=True)
class MasterListVersion:
    version: int
    digest: str
    format: MasterListFormat
    certificates: int
    skipped: tuple[str, ...]
    signers: tuple[str, ...]
    loaded_by: str
    loaded_at: datetime


@dataclass(frozen=True, slots=True)
class LoadResult:
    version: MasterListVersion
    created: bool  # False: the same certificates were already in force
    audit_index: int | None


def _version(row: Row[tuple[object, ...]]) -> MasterListVersion:
    m = row._mapping
    return MasterListVersion(
        version=int(m["id"]),
        digest=str(m["digest"]),
        format=MasterListFormat(m["format"]),
        certificates=len(m["certificates"]),
        skipped=tuple(m["skipped"]),
        signers=tuple(m["signers"]),
        loaded_by=str(m["loaded_by"]),
        loaded_at=m["loaded_at"],
    )


def _newest(conn: Connection) -> Row[tuple[object, ...]] | None:
    query = sa.select(csca_master_lists).order_by(csca_master_lists.c.id.desc()).limit(1)
    return conn.execute(query).first()


def versions(conn: Connection) -> list[MasterListVersion]:
    rows = conn.execute(sa.select(csca_master_lists).order_by(csca_master_lists.c.id))
    return [_version(row) for row in rows]


def load(
    engine: Engine,
    audit: AuditSink,
    data: bytes,
    *,
    actor: str,
    policy: PaPolicy | None = None,
) -> LoadResult:
    """Parse a master list (PEM, LDIF or ICAO CMS) and put it in force as a new version."""
    listed = masterlist.parse(data, policy=policy)
    with engine.begin() as conn:
        newest = _newest(conn)
        if newest is not None and newest._mapping["digest"] == listed.digest:
            return LoadResult(_version(newest), created=False, audit_index=None)
        version_id = conn.execute(
            sa.insert(csca_master_lists)
            .values(
                digest=listed.digest,
                format=listed.format.value,
                certificates=[base64.b64encode(d).decode() for d in listed.der()],
                skipped=list(listed.skipped),
                signers=list(listed.signers),
                loaded_by=actor,
                loaded_at=datetime.now(UTC),
            )
            .returning(csca_master_lists.c.id)
        ).scalar_one()
        row = conn.execute(
            sa.select(csca_master_lists).where(csca_master_lists.c.id == version_id)
        ).one()
    version = _version(row)
    index = audit.append(
        admin_action(
            actor=actor,
            action="identity.csca.load",
            target="csca-master-list",
            details={
                "version": version.version,
                "digest": version.digest,
                "format": version.format.value,
                "certificates": version.certificates,
                "skipped": len(version.skipped),
                "signers": list(version.signers),
            },
        )
    )
    return LoadResult(version, created=True, audit_index=index)


class TrustCache:
    """The worker's copy of the anchors in force, parsed once per version: each job asks for
    the newest version's id (one indexed read) and re-reads the certificates only when it
    changed."""

    def __init__(self, policy: PaPolicy) -> None:
        self._policy = policy
        self._anchors = TrustAnchors((), None, policy)

    def get(self, engine: Engine) -> TrustAnchors:
        with reading(engine) as conn:
            newest = conn.execute(sa.select(sa.func.max(csca_master_lists.c.id))).scalar()
            if newest is None:
                return TrustAnchors((), None, self._policy)  # none loaded: every chip untrusted
            if newest != self._anchors.version:
                row = conn.execute(
                    sa.select(csca_master_lists).where(csca_master_lists.c.id == newest)
                ).one()
                m = row._mapping
                ders = [base64.b64decode(d) for d in m["certificates"]]
                stored = masterlist.from_der(ders, MasterListFormat(m["format"]))
                self._anchors = TrustAnchors(stored.certificates, int(newest), self._policy)
        return self._anchors
