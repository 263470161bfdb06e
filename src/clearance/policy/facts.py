"""Facts -> Cedar: pure functions from stored records to the entities and context the policy
reads."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson

from clearance.catalog.models import Model
from clearance.policy import country_groups
from clearance.policy.models import LicenceFact, PrincipalFacts, RequestContext
from clearance.principals.models import Licence, User, UsPerson

USER = "Clearance::User"
MODEL = "Clearance::Model"
ACTION = "Clearance::Action"


def end_of_day(day: date) -> int:
    """A document or licence "expiring on D" is good through D (UTC): void from D+1 00:00."""
    return int(datetime.combine(day + timedelta(days=1), time(0), UTC).timestamp())


# identity_facts.source -> the policy's `document_assurance`: a chip read verified by Passive
# Authentication (ICAO 9303-11 §5.1) or a photo of the page read by OCR; other sources as they are.
_ASSURANCE = {"chip": "chip", "verification": "visual"}


def principal_facts(user: User) -> PrincipalFacts:
    ident = user.identity
    return PrincipalFacts(
        subject_id=user.subject_id,
        nationalities=frozenset(ident.nationalities) if ident else frozenset(),
        us_person=ident.us_person.value if ident else UsPerson.NONE.value,
        verified_until=end_of_day(ident.expires) if ident else 0,
        residence=user.residence or "",
        screening=user.effective_screening.value,
        org_id=user.org_id,
        version=user.facts_version,
        suspended=user.suspended,
        usage_hold=user.usage_hold is not None,
        org_ownership=user.org_ownership,
        org_owner_share=user.org_owner_share,
        org_ownership_rule=user.org_ownership_rule or "",
        org_headquarters=user.org_headquarters,
        org_parent_country=user.org_parent_country,
        document_assurance=_ASSURANCE.get(ident.source, ident.source) if ident else "",
    )


def best_licence(
    licences: Iterable[Licence], model_id: str, nationalities: frozenset[str], now: float
) -> LicenceFact | None:
    """The organisation's licence for this model that best covers the person: current and covering
    beats covering, which beats current; later expiry breaks ties. The policy re-checks both."""
    best: tuple[tuple[bool, bool, bool, int], LicenceFact] | None = None
    for lic in licences:
        if lic.model_id != model_id:
            continue
        fact = LicenceFact(lic.number, lic.nationalities, end_of_day(lic.expires))
        covers = nationalities <= lic.nationalities
        current = fact.expires > now
        key = (covers and current, covers, current, fact.expires)
        if best is None or key > best[0]:
            best = (key, fact)
    return best[1] if best else None


def in_restore_cohort(p: PrincipalFacts, m: Model) -> bool:
    """Whether a model in phased restore is served to this person (catalog/restore.py); True
    when it is not restoring. Covered by the decision cache key: subject and catalog version."""
    return m.restore is None or m.restore.admits(m.id, p.subject_id, p.org_id)


def user_entity(p: PrincipalFacts) -> dict[str, Any]:
    return {
        "uid": {"type": USER, "id": p.subject_id},
        "attrs": {
            "nationalities": sorted(p.nationalities),
            "us_person": p.us_person,
            "verified_until": p.verified_until,
            "residence": p.residence,
            "screening": p.screening,
            "suspended": p.suspended,
            "usage_hold": p.usage_hold,
            "document_assurance": p.document_assurance,
            "org": {
                "restricted_by_ownership": p.org_ownership == "restricted",
                "ownership_review": p.org_ownership == "review",
                # Cedar's decimal (at most four digits after the point): a percent, 0 to 100.
                "listed_owner_share": {
                    "__extn": {"fn": "decimal", "arg": f"{min(max(p.org_owner_share, 0), 100):.4f}"}
                },
                "ownership_rule": p.org_ownership_rule,
                "headquarters_country": p.org_headquarters,
                "ultimate_parent_country": p.org_parent_country,
                "headquarters_groups": country_groups.of(p.org_headquarters),
                "ultimate_parent_groups": country_groups.of(p.org_parent_country),
            },
        },
        "parents": [],
    }


def model_entity(m: Model) -> dict[str, Any]:
    return {
        "uid": {"type": MODEL, "id": m.id},
        "attrs": {
            "controlled": m.controlled,
            "suspended": m.suspended,
            "retired": m.retired,
            "restoring": m.restore is not None,
        },
        "parents": [],
    }


def request(
    p: PrincipalFacts,
    model_id: str,
    ctx: RequestContext,
    *,
    now: int,
    embargoed: Sequence[str],
    licence: LicenceFact | None,
    restore_cohort: bool,
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "now": now,
        "ip_country": ctx.ip_country,
        "embargoed": list(embargoed),
        "restore_cohort": restore_cohort,
    }
    if ctx.guard is not None:
        g = ctx.guard
        context["guard"] = {
            "outcome": g.outcome,
            "flagged": g.outcome == "flagged",
            "categories": sorted(g.categories),
            # Cedar's decimal: at most four digits after the point (Cedar spec, "decimal").
            "score": {"__extn": {"fn": "decimal", "arg": f"{min(max(g.score, 0.0), 1.0):.4f}"}},
            "fail_open": g.fail_open,
        }
    if licence is not None:
        context["licence"] = {
            "number": licence.number,
            "nationalities": sorted(licence.nationalities),
            "expires": licence.expires,
        }
    return {
        "principal": {"type": USER, "id": p.subject_id},
        "action": {"type": ACTION, "id": ctx.action.value},
        "resource": {"type": MODEL, "id": model_id},
        "context": context,
    }


def digest(entities: list[dict[str, Any]], requests: list[dict[str, Any]]) -> str:
    """A digest of exactly what the policy was shown, for the audit log (no personal data)."""
    blob = orjson.dumps([entities, requests], option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(blob).hexdigest()
