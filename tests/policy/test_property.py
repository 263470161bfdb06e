"""The Cedar pack and the plain-Python reference agree on thousands of generated personas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from clearance.catalog.models import Catalog, Model
from clearance.catalog.restore import OrgRef, RestoreCohort, bucket
from clearance.config import DEFAULT_EMBARGOED
from clearance.policy.decide import Decider
from clearance.policy.engine import DEFAULT_PACK, PolicyEngine
from clearance.policy.models import LicenceFact, PrincipalFacts, RequestContext
from clearance.principals.models import Licence

from .reference import denying_rules

NOW = 1_799_971_200  # a UTC midnight, so licence expiry dates map exactly onto it
DAY = 86_400
COUNTRIES = ["US", "SE", "CN", "IR", "DE", "CU", "GB"]
ENGINE = PolicyEngine(DEFAULT_PACK)

persona = st.builds(
    PrincipalFacts,
    subject_id=st.just("sub_x"),
    nationalities=st.frozensets(st.sampled_from(COUNTRIES), max_size=3),
    us_person=st.sampled_from(["citizen", "lpr", "protected", "none"]),
    verified_until=st.sampled_from([0, NOW - 1, NOW, NOW + 1, NOW + DAY]),
    residence=st.sampled_from(["", *COUNTRIES]),
    screening=st.sampled_from(["clear", "potential_match", "confirmed_match"]),
    org_id=st.sampled_from([None, 1]),
    version=st.integers(1, 10_000),
    suspended=st.booleans(),
)
# Not restoring; restoring to org 1 (the persona's org or not); to a percentage either side of the
# persona's bucket for model "m".
BUCKET = bucket("sub_x", "m")
cohort = st.sampled_from(
    [
        None,
        RestoreCohort(orgs=(OrgRef(1, "one"),)),
        RestoreCohort(orgs=(OrgRef(2, "two"),), internal=True),
        RestoreCohort(percent=BUCKET + 1),
        RestoreCohort(percent=BUCKET),
    ]
)
licence = st.one_of(
    st.none(),
    st.builds(
        LicenceFact,
        number=st.just("L-1"),
        nationalities=st.frozensets(st.sampled_from(COUNTRIES), min_size=1, max_size=4),
        expires=st.sampled_from([NOW - DAY, NOW, NOW + DAY]),
    ),
)


@settings(max_examples=2500, deadline=None)
@given(
    p=persona,
    controlled=st.booleans(),
    suspended=st.booleans(),
    retired=st.booleans(),
    restore=cohort,
    ip=st.sampled_from(["", *COUNTRIES]),
    lic=licence,
)
def test_cedar_matches_reference(
    p: PrincipalFacts,
    controlled: bool,
    suspended: bool,
    retired: bool,
    restore: RestoreCohort | None,
    ip: str,
    lic: LicenceFact | None,
) -> None:
    model = Model(
        "m",
        "up",
        "m",
        controlled=controlled,
        rationale="t",
        suspended=suspended,
        retired_at=datetime.fromtimestamp(NOW, UTC) if retired else None,
        restore=restore,
    )
    catalog = Catalog(version=1, upstreams={}, models={"m": model})
    licences: dict[int, tuple[Licence, ...]] = {}
    held = None
    if lic is not None and p.org_id is not None:
        # Stored licences carry a last valid day; it is void from the next midnight on.
        last_day = (datetime.fromtimestamp(lic.expires, UTC) - timedelta(days=1)).date()
        licences = {1: (Licence(1, 1, "m", lic.nationalities, "L-1", last_day),)}
        held = lic
    decider = Decider(ENGINE, DEFAULT_EMBARGOED, cache_size=10)
    decision = decider.decide(
        p,
        "m",
        RequestContext(ip_country=ip),
        catalog=catalog,
        licences=licences,
        licences_version=1,
        allow_fallback=False,
        now=NOW,
    )
    expected = denying_rules(
        p,
        controlled=controlled,
        suspended=suspended,
        retired=retired,
        ip_country=ip,
        restoring=restore is not None,
        in_cohort=restore is not None
        and (p.org_id in {o.id for o in restore.orgs} or BUCKET < restore.percent),
        embargoed=set(DEFAULT_EMBARGOED),
        licence=held,
        now=NOW,
    )
    if expected:
        assert decision.effect.value == "deny"
        assert set(decision.rules) == expected
    else:
        assert decision.effect.value == "allow"
        assert decision.rules == ("authenticated-principal",)
