"""Policy decisions per second: cached and uncached Cedar, beside a plain-Python evaluation of the
same rules, in one run. Run: .venv/bin/python bench/policy.py

Targets on the 2-core reference machine: cached >= 500,000/s, uncached >= 10,000/s.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.policy.reference import denying_rules

from clearance.catalog.models import Catalog, Model
from clearance.config import DEFAULT_EMBARGOED
from clearance.policy.decide import Decider
from clearance.policy.engine import DEFAULT_PACK, PolicyEngine
from clearance.policy.models import PrincipalFacts, RequestContext

NOW = int(time.time())
COUNTRIES = ["US", "SE", "CN", "IR", "DE", "GB", "FR", "IN"]


def personas(n: int) -> list[PrincipalFacts]:
    rng = random.Random(7)
    return [
        PrincipalFacts(
            subject_id=f"sub_{i}",
            nationalities=frozenset(rng.sample(COUNTRIES, rng.randint(1, 2))),
            us_person=rng.choice(["citizen", "lpr", "protected", "none", "none"]),
            verified_until=rng.choice([0, NOW - 10, NOW + 86_400 * 30]),
            residence=rng.choice(COUNTRIES),
            screening=rng.choice(["clear"] * 8 + ["potential_match", "confirmed_match"]),
            org_id=None,
            version=1,
        )
        for i in range(n)
    ]


def rate(fn: object, n: int) -> float:
    assert callable(fn)
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def main() -> None:
    engine = PolicyEngine(DEFAULT_PACK)
    models = {
        "fable-4": Model("fable-4", "u", "fable-4", controlled=False, rationale="b"),
        "fable-5": Model(
            "fable-5", "u", "fable-5", controlled=True, rationale="a", fallbacks=("fable-4",)
        ),
        "mythos-5": Model(
            "mythos-5", "u", "mythos-5", controlled=True, rationale="a", fallbacks=("fable-5",)
        ),
    }
    catalog = Catalog(1, {}, models)
    people = personas(2000)
    ctx = RequestContext(ip_country="US")
    ids = list(models)

    def run(decider: Decider, rounds: int) -> None:
        for _ in range(rounds):
            for p in people:
                for m in ids:
                    decider.decide(
                        p,
                        m,
                        ctx,
                        catalog=catalog,
                        licences={},
                        licences_version=1,
                        allow_fallback=True,
                        now=NOW,
                    )

    n = len(people) * len(ids)
    # Uncached: a cache of size 1 so every decision evaluates Cedar (requested model + its chain).
    uncached = rate(lambda: run(Decider(engine, DEFAULT_EMBARGOED, cache_size=1), 1), n)
    single = Decider(engine, DEFAULT_EMBARGOED, cache_size=1)
    uncached_nofb = rate(
        lambda: [
            single.decide(
                p,
                m,
                ctx,
                catalog=catalog,
                licences={},
                licences_version=1,
                allow_fallback=False,
                now=NOW,
            )
            for p in people
            for m in ids
        ],
        n,
    )
    warm = Decider(engine, DEFAULT_EMBARGOED, cache_size=100_000)
    run(warm, 1)
    cached = rate(lambda: run(warm, 20), n * 20)

    def reference() -> None:
        for p in people:
            for m in ids:
                denying_rules(
                    p,
                    controlled=models[m].controlled,
                    suspended=False,
                    ip_country="US",
                    embargoed=set(DEFAULT_EMBARGOED),
                    licence=None,
                    now=NOW,
                )

    plain = rate(reference, n)
    print(f"decisions: {n} per pass over {len(people)} personas x {len(ids)} models")
    print(f"  cedar, cached              {cached:>12,.0f} /s   (target >= 500,000)")
    print(f"  cedar, uncached + fallback {uncached:>12,.0f} /s   (target >= 10,000)")
    print(f"  cedar, uncached, no chain  {uncached_nofb:>12,.0f} /s")
    print(f"  plain Python (baseline)    {plain:>12,.0f} /s")


if __name__ == "__main__":
    main()
