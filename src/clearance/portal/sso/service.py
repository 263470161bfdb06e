"""Single sign-on's storage: the sign-ins on their way to the identity provider, and which account
an identity signs in to.

A sign-in sent to the provider is a row keyed by the SHA-256 of its `state`, bound to the
browser's nonce cookie like an emailed link (links.py), with its `nonce` and PKCE verifier. The
callback consumes it with one DELETE, so a `state` works once, in the browser that started it,
for ten minutes (OpenID Connect Core §3.1.2.1 `state`; RFC 6749 §10.12 CSRF on the redirect).

An identity is the pair (`iss`, `sub`) (Core §5.7: the only stable identifier). Its first
sign-in links it to an account: the one the provider provisioned by SCIM for that address, or
the account with that address if the provider says the address is verified, or a new account
(screened in the same transaction, like any account).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.errors import InvalidInput, NotFound, PermissionDenied
from clearance.portal.links import aware, digest
from clearance.portal.scim.tables import scim_users
from clearance.portal.sso.tables import operator_identities, portal_sso_requests
from clearance.principals.models import User
from clearance.principals.service import add_user, get_user, get_user_by_id
from clearance.screening.service import screen_user
from clearance.store.tables import users

REQUEST_MINUTES = 10
NO_ROLE = "your identity provider's groups give you no role in the Clearance console"


@dataclass(frozen=True, slots=True)
class Pending:
    """What the callback needs of the request it answers."""

    nonce: str
    verifier: str
    browser_hash: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Identity:
    """The ID token's claims Clearance uses."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    groups: tuple[str, ...] | None  # None: the token has no groups claim

    @classmethod
    def from_claims(cls, claims: dict[str, object], groups_claim: str) -> Identity:
        email = claims.get("email")
        name = claims.get("name")
        if not isinstance(name, str) or not name.strip():
            given, family = claims.get("given_name"), claims.get("family_name")
            parts = [p for p in (given, family) if isinstance(p, str) and p.strip()]
            name = " ".join(parts) or None
        raw = claims.get(groups_claim)
        if isinstance(raw, str):  # some providers send a single group as a string
            raw = [raw]
        # No claim at all: the provider says nothing of groups here (SCIM may, or roles are
        # granted by hand), so the sign-in changes no role. A claim, even empty, is the truth.
        groups = tuple(str(g) for g in raw) if isinstance(raw, list) else None
        return cls(
            issuer=str(claims["iss"]),
            subject=str(claims["sub"]),
            email=email.strip().lower() if isinstance(email, str) and email.strip() else None,
            email_verified=claims.get("email_verified") is True,
            name=name.strip()[:200] if name else None,
            groups=groups,
        )


def new_verifier() -> str:
    """RFC 7636 §4.1: 32 random octets, base64url: 43 characters of the unreserved set."""
    return secrets.token_urlsafe(32)


def start(conn: Connection, browser: str, *, now: datetime, verifier: str) -> tuple[str, str]:
    """A new pending sign-in for this browser: its `state` and `nonce`."""
    conn.execute(sa.delete(portal_sso_requests).where(portal_sso_requests.c.expires_at <= now))
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    conn.execute(
        sa.insert(portal_sso_requests).values(
            state_hash=digest(state),
            browser_hash=digest(browser),
            nonce=nonce,
            code_verifier=verifier,
            created_at=now,
            expires_at=now + timedelta(minutes=REQUEST_MINUTES),
        )
    )
    return state, nonce


def consume(conn: Connection, state: str) -> Pending:
    """The pending sign-in `state` names, used up whatever `check` then says of it (a state
    tried from the wrong browser is spent: it cannot be tried again from the right one)."""
    where = portal_sso_requests.c.state_hash == digest(state)
    row = conn.execute(sa.select(portal_sso_requests).where(where)).first()
    if row is None or conn.execute(sa.delete(portal_sso_requests).where(where)).rowcount != 1:
        raise PermissionDenied("this sign-in is not known or was used already; start again")
    return Pending(
        nonce=str(row.nonce),
        verifier=str(row.code_verifier),
        browser_hash=str(row.browser_hash),
        expires_at=aware(row.expires_at),
    )


def check(pending: Pending, browser: str, *, now: datetime) -> None:
    """Refused if expired or started in another browser."""
    if pending.expires_at <= now:
        raise PermissionDenied("this sign-in took too long; start again")
    if not secrets.compare_digest(pending.browser_hash, digest(browser)):
        raise PermissionDenied("finish signing in in the browser where you started")


def account(
    conn: Connection, identity: Identity, *, now: datetime, outbox: list[bytes], create: bool
) -> tuple[User, bool]:
    """The account this identity signs in to, linked on first use; (account, created). With
    `create` false (the identity's groups give no role) no account is made for it."""
    key = (
        operator_identities.c.issuer == identity.issuer,
        operator_identities.c.subject == identity.subject,
    )
    linked = conn.execute(sa.select(operator_identities.c.user_id).where(*key)).scalar()
    if linked is not None:
        conn.execute(sa.update(operator_identities).where(*key).values(signed_in_at=now))
        return _usable(conn, get_user_by_id(conn, int(linked))), False
    if identity.email is None:
        raise InvalidInput("the identity provider sent no email address for this account")
    user, created = _by_email(conn, identity, outbox, create)
    conn.execute(
        sa.insert(operator_identities).values(
            issuer=identity.issuer,
            subject=identity.subject,
            user_id=user.id,
            created_at=now,
            signed_in_at=now,
        )
    )
    return _usable(conn, user), created


def _by_email(
    conn: Connection, identity: Identity, outbox: list[bytes], create: bool
) -> tuple[User, bool]:
    assert identity.email is not None
    provisioned = conn.execute(
        sa.select(scim_users.c.user_id)
        .join(users, users.c.id == scim_users.c.user_id)
        .where(users.c.email == identity.email)
    ).scalar()
    if provisioned is not None:  # the provider itself said who this address is
        return get_user_by_id(conn, int(provisioned)), False
    try:
        user = get_user(conn, identity.email)
    except NotFound:
        user = None
    if not identity.email_verified:
        # An address the provider has not verified could be anyone's: it neither takes over
        # an existing account nor makes one in that address's name.
        raise PermissionDenied("the identity provider has not verified this email address")
    if user is not None:
        return user, False
    if not create:
        raise PermissionDenied(NO_ROLE)
    created = add_user(conn, identity.email, name=identity.name)
    # Screened on creation, in the same transaction: nobody exists unscreened.
    screen_user(conn, created.id, outbox=outbox)
    return get_user_by_id(conn, created.id), True


def _usable(conn: Connection, user: User) -> User:
    """Refused if the provider deprovisioned the account by SCIM (active: false)."""
    active = conn.execute(
        sa.select(scim_users.c.active).where(scim_users.c.user_id == user.id)
    ).scalar()
    if active is False:
        raise PermissionDenied("this account has been deactivated by your identity provider")
    return user
