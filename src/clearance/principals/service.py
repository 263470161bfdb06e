"""Principal behaviour: organisations, users, keys, operator-attested identity, licences.

Every change to what the policy sees bumps the person's `facts_version` (or the licences counter)
in the same transaction, so the next decision sees it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from clearance.errors import Conflict, InvalidInput, NotFound
from clearance.principals import keys
from clearance.principals.countries import countries, country
from clearance.principals.models import (
    ApiKey,
    IdentityFacts,
    Licence,
    Method,
    Org,
    ScreeningStatus,
    User,
    UsPerson,
)
from clearance.store import versions
from clearance.store.tables import api_keys, identity_facts, licences, models, orgs, users

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def _now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns: they are UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _maybe_aware(value: datetime | None) -> datetime | None:
    return None if value is None else aware(value)


def add_org(conn: Connection, name: str, country_code: str | None) -> Org:
    name = name.strip()
    if not name:
        raise InvalidInput("an organisation needs a name")
    cc = country(country_code) if country_code else None
    if conn.execute(sa.select(orgs.c.id).where(orgs.c.name == name)).first():
        raise Conflict(f"organisation {name!r} already exists")
    org_id = conn.execute(
        sa.insert(orgs).values(name=name, country=cc, created_at=_now()).returning(orgs.c.id)
    ).scalar_one()
    return Org(int(org_id), name, cc)


def get_org(conn: Connection, name: str) -> Org:
    row = conn.execute(sa.select(orgs).where(orgs.c.name == name)).first()
    if row is None:
        raise NotFound(f"unknown organisation {name!r}")
    return Org(row.id, row.name, row.country)


def add_user(
    conn: Connection,
    email: str,
    *,
    name: str | None = None,
    birth_date: date | None = None,
    org: str | None = None,
    residence: str | None = None,
) -> User:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise InvalidInput(f"{email!r} is not an email address")
    if conn.execute(sa.select(users.c.id).where(users.c.email == email)).first():
        raise Conflict(f"user {email!r} already exists")
    org_id = get_org(conn, org).id if org else None
    conn.execute(
        sa.insert(users).values(
            subject_id="sub_" + secrets.token_hex(12),
            email=email,
            name=name.strip() if name else None,
            birth_date=birth_date,
            org_id=org_id,
            residence=country(residence) if residence else None,
            screening_status=ScreeningStatus.CLEAR.value,
            facts_version=1,
            created_at=_now(),
        )
    )
    versions.bump(conn, versions.Kind.PRINCIPALS)
    return get_user(conn, email)


def get_user(conn: Connection, email: str) -> User:
    row = conn.execute(sa.select(users).where(users.c.email == email.strip().lower())).first()
    if row is None:
        raise NotFound(f"unknown user {email!r}")
    return _user(conn, row)


def get_user_by_id(conn: Connection, user_id: int) -> User:
    row = conn.execute(sa.select(users).where(users.c.id == user_id)).first()
    if row is None:
        raise NotFound(f"unknown user id {user_id}")
    return _user(conn, row)


def get_user_by_subject(conn: Connection, subject_id: str) -> User:
    """By pseudonym: how operator tools name a person without putting an email in a URL."""
    row = conn.execute(sa.select(users).where(users.c.subject_id == subject_id)).first()
    if row is None:
        raise NotFound("unknown subject")
    return _user(conn, row)


def _user(conn: Connection, row: Row[tuple[object, ...]]) -> User:
    facts_row = conn.execute(
        sa.select(identity_facts).where(identity_facts.c.user_id == row.id)
    ).first()
    facts = None
    if facts_row is not None:
        facts = IdentityFacts(
            nationalities=tuple(facts_row.nationalities),
            us_person=UsPerson(facts_row.us_person),
            method=Method(facts_row.method),
            source=facts_row.source,
            verified_at=facts_row.verified_at,
            expires=facts_row.expires,
        )
    org_status = ScreeningStatus.CLEAR
    org_name = None
    ownership: tuple[str, float, str | None] = ("clear", 0.0, None)
    places = ("", "")
    if row.org_id is not None:
        org_row = conn.execute(
            sa.select(
                orgs.c.screening_status,
                orgs.c.name,
                orgs.c.ownership_status,
                orgs.c.listed_owner_share,
                orgs.c.ownership_rule,
                orgs.c.headquarters_country,
                orgs.c.ultimate_parent_country,
            ).where(orgs.c.id == row.org_id)
        ).one()
        org_status, org_name = ScreeningStatus(org_row.screening_status), org_row.name
        ownership = (
            org_row.ownership_status,
            org_row.listed_owner_share,
            org_row.ownership_rule,
        )
        places = (org_row.headquarters_country or "", org_row.ultimate_parent_country or "")
    return User(
        id=row.id,
        subject_id=row.subject_id,
        email=row.email,
        name=row.name,
        birth_date=row.birth_date,
        org_id=row.org_id,
        residence=row.residence,
        screening_status=ScreeningStatus(row.screening_status),
        facts_version=row.facts_version,
        identity=facts,
        org_screening_status=org_status,
        suspended_at=_maybe_aware(row.suspended_at),
        suspended_reason=row.suspended_reason,
        org_name=org_name,
        usage_hold=row.usage_hold,
        org_ownership=ownership[0],
        org_owner_share=ownership[1],
        org_ownership_rule=ownership[2],
        org_headquarters=places[0],
        org_parent_country=places[1],
    )


def touch_members(conn: Connection, org_id: int) -> None:
    """Mark every member's facts as changed (their organisation's status changed)."""
    conn.execute(
        sa.update(users)
        .where(users.c.org_id == org_id)
        .values(facts_version=users.c.facts_version + 1)
    )
    versions.bump(conn, versions.Kind.PRINCIPALS)


def touch_facts(conn: Connection, user_id: int) -> None:
    """Mark a person's facts as changed: the next decision for them is re-evaluated."""
    conn.execute(
        sa.update(users)
        .where(users.c.id == user_id)
        .values(facts_version=users.c.facts_version + 1)
    )
    versions.bump(conn, versions.Kind.PRINCIPALS)


def set_identity(
    conn: Connection,
    user_id: int,
    *,
    nationalities: Iterable[str],
    us_person: UsPerson,
    method: Method,
    source: str,
    expires: date | None,
    max_age_days: int,
) -> IdentityFacts:
    """Record verified identity facts (operator attestation, document verification or an
    assertion all land here). Expiry is the given one or the configured maximum, whichever is
    sooner."""
    nats = countries(nationalities)
    if not nats:
        raise InvalidInput("at least one --nationality is required")
    if us_person is UsPerson.CITIZEN and "US" not in nats:
        raise InvalidInput("a US citizen must hold US nationality")
    now = _now()
    ceiling = now.date() + timedelta(days=max_age_days)
    effective = min(expires, ceiling) if expires else ceiling
    values = {
        "nationalities": list(nats),
        "us_person": us_person.value,
        "method": method.value,
        "source": source,
        "verified_at": now,
        "expires": effective,
    }
    conn.execute(sa.delete(identity_facts).where(identity_facts.c.user_id == user_id))
    conn.execute(sa.insert(identity_facts).values(user_id=user_id, **values))
    touch_facts(conn, user_id)
    return IdentityFacts(nats, us_person, method, source, now, effective)


def create_key(
    conn: Connection,
    email: str,
    *,
    name: str | None,
    allow_fallback: bool,
    expires_at: datetime | None = None,
    scope: tuple[str, ...] = (),
) -> tuple[ApiKey, str]:
    """Returns the stored key record and the secret, which is never stored or shown again.
    `scope`: the models the key may ask for (() : every model)."""
    user = get_user(conn, email)
    if expires_at is not None and expires_at <= _now():
        raise InvalidInput("a key's expiry must be in the future")
    scope = check_key_models(conn, scope)
    secret = keys.new_key()
    record = ApiKey(
        id=keys.new_key_id(),
        user_id=user.id,
        name=name,
        hint=secret[-4:],
        allow_fallback=allow_fallback,
        created_at=_now(),
        revoked_at=None,
        expires_at=expires_at,
        models=scope,
    )
    conn.execute(
        sa.insert(api_keys).values(
            id=record.id,
            user_id=user.id,
            name=name,
            key_hash=keys.key_hash(secret),
            hint=record.hint,
            allow_fallback=allow_fallback,
            created_at=record.created_at,
            expires_at=expires_at,
            models=list(scope) or None,
        )
    )
    versions.bump(conn, versions.Kind.PRINCIPALS)
    return record, secret


MAX_KEY_MODELS = 64


def check_key_models(conn: Connection, wanted: tuple[str, ...]) -> tuple[str, ...]:
    """A key's model scope: catalog model ids, each once, in the given order."""
    unique = tuple(dict.fromkeys(m.strip() for m in wanted))
    if len(unique) > MAX_KEY_MODELS:
        raise InvalidInput(f"a key is scoped to at most {MAX_KEY_MODELS} models")
    if unique:
        known = set(conn.execute(sa.select(models.c.id).where(models.c.id.in_(unique))).scalars())
        unknown = [m for m in unique if m not in known]
        if unknown:
            raise NotFound(f"unknown model {unknown[0]!r}: a key is scoped to catalog models")
    return unique


def scope_key(conn: Connection, key_id: str, wanted: tuple[str, ...]) -> ApiKey:
    """Scope an active key to `wanted` models (() : every model again); effective on every
    worker within the invalidation bound."""
    scope = check_key_models(conn, wanted)
    done = conn.execute(
        sa.update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(models=list(scope) or None)
    )
    if done.rowcount == 0:
        raise NotFound(f"no active key {key_id!r}")
    versions.bump(conn, versions.Kind.PRINCIPALS)
    row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).one()
    return key_record(row)


def revoke_key(conn: Connection, key_id: str) -> None:
    result = conn.execute(
        sa.update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=_now())
    )
    if result.rowcount == 0:
        raise NotFound(f"no active key {key_id!r}")
    versions.bump(conn, versions.Kind.PRINCIPALS)


def list_keys(conn: Connection, user_id: int) -> list[ApiKey]:
    rows = conn.execute(
        sa.select(api_keys).where(api_keys.c.user_id == user_id).order_by(api_keys.c.created_at)
    )
    return [key_record(r) for r in rows]


def key_record(r: Row[tuple[object, ...]]) -> ApiKey:
    return ApiKey(
        r.id,
        r.user_id,
        r.name,
        r.hint,
        bool(r.allow_fallback),
        aware(r.created_at),
        _maybe_aware(r.revoked_at),
        _maybe_aware(r.expires_at),
        tuple(r.models or ()),
    )


def authenticate(conn: Connection, secret: str) -> tuple[ApiKey, User]:
    """The key's record and its owner, for an active key; AuthenticationError otherwise."""
    from clearance.errors import AuthenticationError

    if not keys.looks_like_key(secret):
        raise AuthenticationError("invalid API key")
    row = conn.execute(
        sa.select(api_keys).where(api_keys.c.key_hash == keys.key_hash(secret))
    ).first()
    if row is None:
        raise AuthenticationError("invalid API key")
    if row.revoked_at is not None:
        # The same answer to the client; the log tells a revoked key's use from a guess.
        raise AuthenticationError("invalid API key", reason="revoked_api_key")
    if row.expires_at is not None and aware(row.expires_at) <= _now():
        raise AuthenticationError("invalid API key", reason="expired_api_key")
    key = key_record(row)
    return key, get_user_by_id(conn, row.user_id)


def add_licence(
    conn: Connection,
    *,
    org: str,
    model_id: str,
    nationalities: Iterable[str],
    number: str,
    expires: date,
    authority: str = "BIS",
) -> Licence:
    org_rec = get_org(conn, org)
    if not authority.strip():
        raise InvalidInput("a licence names its issuing --authority")
    if conn.execute(sa.select(models.c.id).where(models.c.id == model_id)).first() is None:
        raise NotFound(f"unknown model {model_id!r}")
    nats = countries(nationalities)
    if not nats:
        raise InvalidInput("a licence names at least one --nationality")
    if not number.strip():
        raise InvalidInput("a licence needs its --number")
    licence_id = conn.execute(
        sa.insert(licences)
        .values(
            org_id=org_rec.id,
            model_id=model_id,
            nationalities=list(nats),
            number=number.strip(),
            expires=expires,
            created_at=_now(),
            authority=authority.strip(),
        )
        .returning(licences.c.id)
    ).scalar_one()
    versions.bump(conn, versions.Kind.LICENCES)
    return Licence(
        int(licence_id),
        org_rec.id,
        model_id,
        frozenset(nats),
        number.strip(),
        expires,
        authority.strip(),
    )


def load_licences(conn: Connection) -> dict[int, tuple[Licence, ...]]:
    """All licences in force (not revoked), by organisation."""
    out: dict[int, list[Licence]] = {}
    query = sa.select(licences).where(licences.c.revoked_at.is_(None)).order_by(licences.c.id)
    for r in conn.execute(query):
        out.setdefault(r.org_id, []).append(licence_record(r))
    return {k: tuple(v) for k, v in out.items()}


def licence_record(r: Row[tuple[object, ...]]) -> Licence:
    return Licence(
        r.id,
        r.org_id,
        r.model_id,
        frozenset(r.nationalities),
        r.number,
        r.expires,
        r.authority,
        _maybe_aware(r.revoked_at),
        r.revoked_reason,
    )
