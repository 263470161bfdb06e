"""A small plain-Python statement of the default pack, to hold the Cedar policy to account."""

from __future__ import annotations

from clearance.policy.models import LicenceFact, PrincipalFacts

US_PERSONS = {"citizen", "lpr", "protected"}


def denying_rules(
    p: PrincipalFacts,
    *,
    controlled: bool,
    suspended: bool,
    retired: bool,
    ip_country: str,
    restoring: bool = False,
    in_cohort: bool = True,
    embargoed: set[str],
    licence: LicenceFact | None,
    now: int,
) -> set[str]:
    rules: set[str] = set()
    if suspended:
        rules.add("model-suspended")
    if retired:
        rules.add("model-retired")
    if restoring and not in_cohort:
        rules.add("model-restoring")
    if p.suspended:
        rules.add("account-suspended")
    if p.screening == "confirmed_match":
        rules.add("restricted-party")
    if controlled and p.screening == "potential_match":
        rules.add("restricted-party-review")
    if p.residence in embargoed:
        rules.add("embargoed-residence")
    if ip_country in embargoed:
        rules.add("embargoed-location")
    if p.us_person == "none" and p.nationalities & embargoed:
        rules.add("embargoed-nationality")
    if controlled:
        current = p.verified_until > now
        if p.verified_until == 0:
            rules.add("controlled-requires-verification")
        elif not current:
            rules.add("controlled-verification-expired")
        elif p.us_person not in US_PERSONS:
            if licence is None:
                rules.add("controlled-foreign-person")
            elif licence.expires <= now:
                rules.add("controlled-licence-expired")
            elif not p.nationalities <= licence.nationalities:
                rules.add("controlled-licence-not-covering")
    return rules
