"""Principal data: frozen records read from the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


class UsPerson(StrEnum):
    """US-person status for deemed exports, 15 CFR 734.13(b) / 772.1 "U.S. person"."""

    CITIZEN = "citizen"
    LPR = "lpr"  # lawful permanent resident, 8 U.S.C. 1101(a)(20)
    PROTECTED = "protected"  # protected individual, 8 U.S.C. 1324b(a)(3)
    NONE = "none"


class Method(StrEnum):
    IN_PERSON = "in_person"
    DOCUMENT = "document"
    ASSERTION = "assertion"
    REMOTE = "remote"


class ScreeningStatus(StrEnum):
    CLEAR = "clear"
    POTENTIAL_MATCH = "potential_match"
    CONFIRMED_MATCH = "confirmed_match"


@dataclass(frozen=True, slots=True)
class Org:
    id: int
    name: str
    country: str | None
    screening_status: str = "clear"
    # Ownership screening (screening/ownership.py): clear | review | restricted, the aggregate
    # share held by blocked owners, the rule, and the path (operators only).
    ownership_status: str = "clear"
    listed_owner_share: float = 0.0
    ownership_rule: str | None = None
    ownership_path: tuple[dict[str, object], ...] = ()
    # Know your business (`orgs update --legal-name ...`): None where not declared.
    kyb: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IdentityFacts:
    nationalities: tuple[str, ...]
    us_person: UsPerson
    method: Method
    source: str
    verified_at: datetime
    expires: date


@dataclass(frozen=True, slots=True)
class User:
    id: int
    subject_id: str
    email: str
    name: str | None
    birth_date: date | None
    org_id: int | None
    residence: str | None
    screening_status: ScreeningStatus
    facts_version: int
    identity: IdentityFacts | None
    org_screening_status: ScreeningStatus = ScreeningStatus.CLEAR
    suspended_at: datetime | None = None
    suspended_reason: str | None = None
    org_name: str | None = None
    # The misuse guard's hold on controlled models: None, "pending" (review) or "confirmed".
    usage_hold: str | None = None
    # The organisation's ownership screening: clear | review | restricted, share, rule.
    org_ownership: str = "clear"
    org_owner_share: float = 0.0
    org_ownership_rule: str | None = None
    # Where the organisation is headquartered and its ultimate parent is (KYB); "" unknown.
    org_headquarters: str = ""
    org_parent_country: str = ""

    @property
    def suspended(self) -> bool:
        return self.suspended_at is not None

    @property
    def effective_screening(self) -> ScreeningStatus:
        """The worse of the person's own status and their organisation's."""
        order = list(ScreeningStatus)
        return max(self.screening_status, self.org_screening_status, key=order.index)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    user_id: int
    name: str | None
    hint: str
    allow_fallback: bool
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None = None  # None: valid until revoked
    models: tuple[str, ...] = ()  # the models it may ask for (and be served); (): every model

    def allows(self, model_id: str) -> bool:
        return not self.models or model_id in self.models


@dataclass(frozen=True, slots=True)
class Licence:
    """A deemed-export licence (15 CFR 734.13(b), Part 750) held by an organisation."""

    id: int
    org_id: int
    model_id: str
    nationalities: frozenset[str]
    number: str
    expires: date
    authority: str = "BIS"
    revoked_at: datetime | None = None
    revoked_reason: str | None = None


def user_json(user: User) -> dict[str, object]:
    """A user's stored facts as operators see them (`users show`, the admin API)."""
    ident = user.identity
    return {
        "email": user.email,
        "subject_id": user.subject_id,
        "name": user.name,
        "org": user.org_name,
        "residence": user.residence,
        "screening": user.screening_status.value,
        "org_screening": user.org_screening_status.value,
        "status": "suspended" if user.suspended else "active",
        "suspended_at": user.suspended_at.isoformat() if user.suspended_at else None,
        "suspended_reason": user.suspended_reason,
        "usage_hold": user.usage_hold,
        "identity": None
        if ident is None
        else {
            "nationalities": list(ident.nationalities),
            "us_person": ident.us_person.value,
            "method": ident.method.value,
            "source": ident.source,
            "verified_at": ident.verified_at.isoformat(),
            "expires": ident.expires.isoformat(),
        },
    }
