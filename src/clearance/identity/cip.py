"""The Customer Identification Programme (CIP) record: what a provider keeps of each customer.

The rules proposed for US IaaS providers (89 FR 5698, January 2024: the Customer Identification
Programme of the proposed 15 CFR part 7) list what a provider collects and keeps per customer:
the name, address, the means and source of payment, email address and telephone number, the IP
addresses used for access with the date and time of the access, and the identifying document's
type and number. Clearance keeps derived facts for its decisions (identity/service.py: never a
name or a number); this module keeps the record itself, apart and sealed:

    field     where it comes from                                  where it is kept
    name      the account (users.name)                             users (as today)
    email     the account (users.email)                            users (as today)
    document  the MRZ read of the latest document verification    cip_records, sealed
    address   the person (portal) or the billing system (API/CLI)  cip_records, sealed
    phone     the person (portal) or the billing system (API/CLI)  cip_records, sealed
    payment   the billing system, or the person: means and source  cip_records, sealed
    ip        the gateway's own observations, one row per person,  cip_addresses, sealed
              day and address (first and last time, requests)

`[cip] require` names the fields the configured programme requires; nothing is kept of a field
it does not name (data minimisation), and the portal asks only for a required field the
person must supply (address, phone, payment) that is not on record yet.

Sealing: each sealed value is a vault file format (`identity.vault.seal`: a fresh data key per
value, AES-256-GCM, the data key wrapped by AES Key Wrap) under a key derived from the vault's
master key for this purpose only; the additional data binds the row (person, day, address), so
a value copied to another row fails. An address's row is found by a keyed MAC of the address
(useless without the key), never by the address itself. Reading a record is an audit entry
(`identity.cip.view`) appended before anything is decrypted; changing one names the fields
changed, never their values (`identity.cip.update`). The record is an export record: it is kept
while the account exists (an erasure request erases images, not this record: the programme
requires it), and the daily address rows `[cip] retention_years` after their day, unless a
legal hold covers the person (docs/retention.md).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from clearance.audit import holds
from clearance.audit.entries import admin_action
from clearance.audit.sink import AuditSink
from clearance.config import CipSettings
from clearance.errors import InvalidInput, VerificationError
from clearance.identity.tables import cip_addresses, cip_records
from clearance.identity.vault import EvidenceVault, seal, unseal
from clearance.principals.service import get_user_by_id
from clearance.store import reading
from clearance.store.tables import users

# Every field a programme may require, in the order the record shows them.
FIELDS = ("name", "email", "document", "address", "phone", "payment", "ip")
# The fields a person (or the provider's billing system) supplies; the others Clearance knows.
SUPPLIED = ("address", "phone", "payment")
PAYMENT_MEANS = ("card", "bank_transfer", "direct_debit", "invoice", "wallet", "other")
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}")  # ITU-T E.164: a country code and at most 15 digits
_MAX_TEXT = 500


@dataclass(frozen=True, slots=True)
class CipKeys:
    """The two keys the record needs, derived from the vault's master key (which the serving
    process then need not hold): one wraps sealed values, one names addresses."""

    seal: bytes
    mac: bytes

    @classmethod
    def of(cls, vault: EvidenceVault) -> CipKeys:
        return cls(seal=vault.derive_key("cip-record"), mac=vault.derive_key("cip-address"))

    def address_mac(self, address: str) -> str:
        return hmac.new(self.mac, address.encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Address:
    day: date
    address: str
    first_seen: datetime
    last_seen: datetime
    requests: int


@dataclass(frozen=True, slots=True)
class Record:
    """One person's record, decrypted: what a reviewer sees and the auditor bundle holds."""

    subject: str
    required: tuple[str, ...]
    values: dict[str, Any]  # field -> value, only the fields on record
    addresses: tuple[Address, ...]
    updated_at: datetime | None

    @property
    def missing(self) -> tuple[str, ...]:
        present = set(self.values) | ({"ip"} if self.addresses else set())
        return tuple(f for f in self.required if f not in present)

    def as_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "required": list(self.required),
            "missing": list(self.missing),
            "fields": self.values,
            "addresses": [
                {
                    "day": a.day.isoformat(),
                    "address": a.address,
                    "first_seen": _iso(a.first_seen),
                    "last_seen": _iso(a.last_seen),
                    "requests": a.requests,
                }
                for a in self.addresses
            ],
            "updated_at": _iso(self.updated_at) if self.updated_at else None,
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _now() -> datetime:
    return datetime.now(UTC)


def _text(value: object, what: str, limit: int = _MAX_TEXT) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what}: a non-empty text is required")
    text = value.strip()
    if len(text) > limit:
        raise InvalidInput(f"{what}: at most {limit} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise InvalidInput(f"{what}: control characters are not allowed")
    return text


def normalise(field: str, value: object) -> Any:
    """A supplied field's value, checked and in its stored form; InvalidInput names the field."""
    if field == "address":
        return _text(value, "address")
    if field == "phone":
        digits = re.sub(r"[\s().-]", "", value) if isinstance(value, str) else ""
        if not _PHONE.fullmatch(digits):
            raise InvalidInput(
                "phone: an international number, + and the country code (E.164), e.g."
                " +44 20 7946 0000"
            )
        return digits
    if field == "payment":
        if not isinstance(value, Mapping):
            raise InvalidInput("payment: means and source are required")
        means = value.get("means")
        if means not in PAYMENT_MEANS:
            raise InvalidInput("payment.means: one of " + ", ".join(PAYMENT_MEANS))
        return {"means": means, "source": _text(value.get("source"), "payment.source", 200)}
    raise InvalidInput(f"{field}: not a field a person supplies")


def _record_id(user_id: int) -> str:
    return f"cip-record:{user_id}"


def _load(conn: Connection, keys: CipKeys, user_id: int) -> tuple[dict[str, Any], Any]:
    row = conn.execute(sa.select(cip_records).where(cip_records.c.user_id == user_id)).first()
    if row is None:
        return {}, None
    try:
        values = orjson.loads(unseal(keys.seal, _record_id(user_id), row.sealed))
    except VerificationError:
        raise VerificationError(f"the CIP record of user {user_id} failed authentication") from None
    return values, row


def present(conn: Connection, user_id: int) -> frozenset[str]:
    """The sealed fields on record (names only: nothing is decrypted)."""
    row = conn.execute(
        sa.select(cip_records.c.fields).where(cip_records.c.user_id == user_id)
    ).first()
    return frozenset(row.fields) if row is not None else frozenset()


def to_supply(settings: CipSettings, conn: Connection, user_id: int) -> tuple[str, ...]:
    """What the programme requires that the person must still supply (what the portal asks)."""
    have = present(conn, user_id)
    return tuple(f for f in SUPPLIED if f in settings.require and f not in have)


def _store(
    conn: Connection, keys: CipKeys, user_id: int, values: dict[str, Any], row: Any, actor: str
) -> None:
    sealed = seal(keys.seal, _record_id(user_id), orjson.dumps(values))
    fields = sorted(values)
    if row is None:
        conn.execute(
            sa.insert(cip_records).values(
                user_id=user_id,
                sealed=sealed,
                fields=fields,
                version=1,
                updated_at=_now(),
                updated_by=actor,
            )
        )
        return
    done = conn.execute(
        sa.update(cip_records)
        .where(cip_records.c.user_id == user_id, cip_records.c.version == row.version)
        .values(
            sealed=sealed,
            fields=fields,
            version=row.version + 1,
            updated_at=_now(),
            updated_by=actor,
        )
    )
    if done.rowcount != 1:  # another writer changed it since it was read: its change stays
        raise InvalidInput("the record changed meanwhile; try again")


def supply(
    engine: Engine,
    keys: CipKeys,
    audit: AuditSink,
    settings: CipSettings,
    user_id: int,
    changes: Mapping[str, object],
    *,
    actor: str,
) -> int:
    """Record supplied fields (address, phone, payment) that the programme requires; returns
    the audit index of the `identity.cip.update` entry, which names the fields, not values."""
    unknown = [f for f in changes if f not in SUPPLIED]
    if unknown:
        raise InvalidInput(f"{unknown[0]}: not a field a person supplies")
    unasked = [f for f in changes if f not in settings.require]
    if unasked:  # data minimisation: keep nothing the programme does not require
        raise InvalidInput(f"{unasked[0]}: the programme ([cip] require) does not ask for it")
    if not changes:
        raise InvalidInput("nothing to record")
    clean = {f: normalise(f, v) for f, v in changes.items()}
    with engine.begin() as conn:
        subject = get_user_by_id(conn, user_id).subject_id
        values, row = _load(conn, keys, user_id)
        values.update(clean)
        _store(conn, keys, user_id, values, row, actor)
    # After the commit, as every change here is recorded (SQLite's one writer is the log's too).
    return audit.append(
        admin_action(
            actor=actor,
            action="identity.cip.update",
            target=subject,
            details={"fields": sorted(clean)},
            subject=subject,
        )
    )


def record_document(
    conn: Connection,
    keys: CipKeys,
    settings: CipSettings,
    user_id: int,
    *,
    document_type: str,
    issuing_state: str,
    number: str,
    case_id: int,
) -> None:
    """The document's type and number from a verification, in its transaction (its own entry,
    `identity.verification`, records the case; the number never enters the log)."""
    if "document" not in settings.require:
        return
    values, row = _load(conn, keys, user_id)
    values["document"] = {
        "type": document_type,
        "issuing_state": issuing_state,
        "number": number,
        "case": case_id,
    }
    _store(conn, keys, user_id, values, row, "verification")


def view(
    engine: Engine,
    keys: CipKeys,
    audit: AuditSink,
    settings: CipSettings,
    user_id: int,
    *,
    actor: str,
    purpose: str,
    since: date | None = None,
) -> Record:
    """The person's record, decrypted for `actor`; the view is appended to the log (and durable)
    before anything is decrypted, so no one reads a record unrecorded."""
    purpose = _text(purpose, "reason", 200)
    with reading(engine) as conn:
        user = get_user_by_id(conn, user_id)
    audit.append(
        admin_action(
            actor=actor,
            action="identity.cip.view",
            target=user.subject_id,
            details={"reason": purpose},
            subject=user.subject_id,
        )
    )
    return read(engine, keys, settings, user_id, since=since)


def read(
    engine: Engine, keys: CipKeys, settings: CipSettings, user_id: int, *, since: date | None = None
) -> Record:
    """The record decrypted, unaudited: for callers that audit the read themselves (the
    auditor bundle's export entry)."""
    with reading(engine) as conn:
        user = get_user_by_id(conn, user_id)
        sealed, row = _load(conn, keys, user_id)
        query = sa.select(cip_addresses).where(cip_addresses.c.user_id == user_id)
        if since is not None:
            query = query.where(cip_addresses.c.day >= since)
        rows = conn.execute(query.order_by(cip_addresses.c.day, cip_addresses.c.first_seen)).all()
    values: dict[str, Any] = {}
    if "name" in settings.require and user.name:
        values["name"] = user.name
    if "email" in settings.require:
        values["email"] = user.email
    values.update({f: sealed[f] for f in FIELDS if f in sealed})
    addresses = tuple(
        Address(
            day=r.day,
            address=unseal(
                keys.seal, _address_id(user_id, r.day, r.address_mac), r.sealed
            ).decode(),
            first_seen=r.first_seen,
            last_seen=r.last_seen,
            requests=int(r.requests),
        )
        for r in rows
    )
    return Record(
        subject=user.subject_id,
        required=tuple(f for f in FIELDS if f in settings.require),
        values=values,
        addresses=addresses,
        updated_at=row.updated_at if row is not None else None,
    )


def _address_id(user_id: int, day: date, mac: str) -> str:
    return f"cip-address:{user_id}:{day.isoformat()}:{mac}"


# -- the gateway's observations ------------------------------------------------------------


class AddressBook:
    """The addresses each person's keys were used from, per UTC day, as one serving worker saw
    them: kept in memory on the request path (a dict update), written out every
    `[cip] flush_seconds` by `flush` (sealed, one row per person, day and address)."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        # (user id, day number, address) -> [first seen, last seen, requests] (POSIX seconds)
        self._seen: dict[tuple[int, int, str], list[float]] = {}

    def observe(self, user_id: int, address: str) -> None:
        now = time.time()
        key = (user_id, int(now // 86_400), address)
        seen = self._seen.get(key)
        if seen is None:
            self._seen[key] = [now, now, 1.0]
        else:
            seen[1] = now
            seen[2] += 1

    def merge(
        self, user_id: int, day: int, address: str, first: float, last: float, count: float
    ) -> None:
        """Put back what a failed flush drained."""
        seen = self._seen.setdefault((user_id, day, address), [first, last, 0.0])
        seen[0], seen[1], seen[2] = min(seen[0], first), max(seen[1], last), seen[2] + count

    def __len__(self) -> int:
        return len(self._seen)

    def drain(self) -> dict[tuple[int, int, str], list[float]]:
        seen, self._seen = self._seen, {}
        return seen


def _canonical(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None  # a Unix socket or a test client: no address to keep


def flush(
    engine: Engine, keys: CipKeys, observed: Mapping[tuple[int, int, str], list[float]]
) -> int:
    """Merge drained observations into `cip_addresses` (many workers may write the same row:
    first seen is the earliest, last seen the latest, requests add up); returns rows written."""
    rows = []
    for (user_id, day_number, raw), (first, last, count) in observed.items():
        address = _canonical(raw)
        if address is None:
            continue
        day = date(1970, 1, 1) + timedelta(days=day_number)
        mac = keys.address_mac(address)
        rows.append(
            {
                "user_id": user_id,
                "day": day,
                "address_mac": mac,
                "sealed": seal(keys.seal, _address_id(user_id, day, mac), address.encode()),
                "first_seen": datetime.fromtimestamp(first, UTC),
                "last_seen": datetime.fromtimestamp(last, UTC),
                "requests": int(count),
            }
        )
    if not rows:
        return 0
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(cip_addresses)
    old, new = cip_addresses.c, insert.excluded
    statement = insert.on_conflict_do_update(
        index_elements=[old.user_id, old.day, old.address_mac],
        set_={
            "first_seen": sa.case(
                (new.first_seen < old.first_seen, new.first_seen), else_=old.first_seen
            ),
            "last_seen": sa.case(
                (new.last_seen > old.last_seen, new.last_seen), else_=old.last_seen
            ),
            "requests": old.requests + new.requests,
        },
    )
    with engine.begin() as conn:
        # A person deleted since (their row gone) is skipped, not a failed batch.
        ids = {r["user_id"] for r in rows}
        live = set(conn.execute(sa.select(users.c.id).where(users.c.id.in_(ids))).scalars())
        rows = [r for r in rows if r["user_id"] in live]
        if rows:
            conn.execute(statement, rows)
    return len(rows)


def purge_addresses(engine: Engine, settings: CipSettings, *, now: datetime | None = None) -> int:
    """Erase address rows older than `[cip] retention_years`, except a held person's."""
    cutoff = ((now or _now()) - timedelta(days=365 * settings.retention_years)).date()
    held = holds.held(case_id=sa.literal(0), user_id=cip_addresses.c.user_id)
    with engine.begin() as conn:
        done = conn.execute(sa.delete(cip_addresses).where(cip_addresses.c.day < cutoff, ~held))
    return int(done.rowcount or 0)
