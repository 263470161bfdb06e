"""The JSON shapes of people, organisations, keys and licences: one function each, used by both
the CLI's --json and the operator API, so the two can never disagree."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import TypeVar

from clearance.principals.directory import Page
from clearance.principals.licences import HeldLicence
from clearance.principals.models import ApiKey, Org, User, user_json

T = TypeVar("T")


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def page_json(
    name: str, page: Page[T], item: Callable[[T], dict[str, object]]
) -> dict[str, object]:
    return {name: [item(i) for i in page.items], "next": page.next}


def users_json(page: Page[User]) -> dict[str, object]:
    return page_json("users", page, user_json)


def org_json(org: Org, members: int) -> dict[str, object]:
    return {
        "id": org.id,
        "name": org.name,
        "country": org.country,
        "screening": org.screening_status,
        # Name screening and ownership screening together: the worse of the two.
        "screening_status": _worse(org.screening_status, org.ownership_status),
        "restricted_by_ownership": org.ownership_status == "restricted",
        "ownership_status": org.ownership_status,
        "listed_owner_share": org.listed_owner_share,
        "ownership_rule": org.ownership_rule,
        "ownership_path": list(org.ownership_path),  # operators only: never shown to members
        **org.kyb,
        "members": members,
    }


def _worse(screening: str, ownership: str) -> str:
    """clear < potential_match (name or ownership review) < restricted_by_ownership <
    confirmed_match (listed itself)."""
    if screening == "confirmed_match":
        return screening
    if ownership == "restricted":
        return "restricted_by_ownership"
    if screening == "potential_match" or ownership == "review":
        return "potential_match"
    return "clear"


def org_detail_json(org: Org, members: Iterable[User], count: int) -> dict[str, object]:
    return {**org_json(org, count), "member_list": [user_json(u) for u in members]}


def key_json(entry: tuple[ApiKey, str]) -> dict[str, object]:
    key, owner = entry
    now = datetime.now(UTC)
    if key.revoked_at is not None:
        status = "revoked"
    elif key.expires_at is not None and key.expires_at <= now:
        status = "expired"
    else:
        status = "active"
    return {
        "id": key.id,
        "name": key.name,
        "hint": key.hint,  # the secret's last four characters, never more
        "owner": owner,
        "allow_fallback": key.allow_fallback,
        "models": list(key.models) or None,  # null: every model
        "created_at": _when(key.created_at),
        "expires_at": _when(key.expires_at),
        "revoked_at": _when(key.revoked_at),
        "status": status,
    }


def licence_json(held: HeldLicence, today: date | None = None) -> dict[str, object]:
    lic = held.licence
    return {
        "id": lic.id,
        "number": lic.number,
        "authority": lic.authority,
        "org": held.org,
        "models": [lic.model_id],
        "nationalities": sorted(lic.nationalities),
        "expires": lic.expires.isoformat(),
        "status": held.status(today or datetime.now(UTC).date()),
        "revoked_at": _when(lic.revoked_at),
        "revoked_reason": lic.revoked_reason,
    }
