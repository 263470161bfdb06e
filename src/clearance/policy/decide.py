"""Decisions: the requested model, then its fallback chain, each under the full policy; cached.

The cache key holds every version the answer depends on (the person's facts, the catalog, the
licences) and each entry carries the moment an expiry would change it, so a change takes effect on
the very next decision and an unchanged decision is one dict lookup.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from clearance.catalog.models import Catalog
from clearance.errors import NotFound
from clearance.policy import facts
from clearance.policy.engine import PolicyEngine
from clearance.policy.models import (
    Decision,
    Effect,
    PrincipalFacts,
    Reason,
    RequestContext,
)
from clearance.principals.models import Licence

CacheKey = tuple[str, int, int, int, str, str, str, bool]


class Decider:
    def __init__(self, engine: PolicyEngine, embargoed: Sequence[str], cache_size: int) -> None:
        self.engine = engine
        self.embargoed = tuple(sorted(set(embargoed)))
        self.cache_size = cache_size
        self._cache: dict[CacheKey, Decision] = {}

    def decide(
        self,
        principal: PrincipalFacts,
        model_id: str,
        ctx: RequestContext,
        *,
        catalog: Catalog,
        licences: Mapping[int, tuple[Licence, ...]],
        licences_version: int,
        allow_fallback: bool,
        now: float | None = None,
    ) -> Decision:
        moment = time.time() if now is None else now
        if ctx.guard is not None or now is not None:  # a verdict on this text, or another day
            return self._evaluate(
                principal,
                model_id,
                ctx,
                catalog,
                licences,
                licences_version,
                allow_fallback,
                moment,
            )
        key: CacheKey = (
            principal.subject_id,
            principal.version,
            catalog.version,
            licences_version,
            model_id,
            ctx.action.value,
            ctx.ip_country,
            allow_fallback,
        )
        hit = self._cache.get(key)
        if hit is not None and moment < hit.valid_until:
            return hit
        decision = self._evaluate(
            principal, model_id, ctx, catalog, licences, licences_version, allow_fallback, moment
        )
        if len(self._cache) >= self.cache_size:
            self._cache.pop(next(iter(self._cache)))  # evict the oldest entry
        self._cache[key] = decision
        return decision

    def _evaluate(
        self,
        principal: PrincipalFacts,
        model_id: str,
        ctx: RequestContext,
        catalog: Catalog,
        licences: Mapping[int, tuple[Licence, ...]],
        licences_version: int,
        allow_fallback: bool,
        moment: float,
    ) -> Decision:
        if model_id not in catalog.models:
            raise NotFound(f"unknown model {model_id!r}")
        chain = [model_id, *(catalog.fallback_chain(model_id) if allow_fallback else ())]
        now = int(moment)
        org_licences = licences.get(principal.org_id, ()) if principal.org_id is not None else ()
        held = [facts.best_licence(org_licences, m, principal.nationalities, now) for m in chain]
        entities = [facts.user_entity(principal)]
        entities += [facts.model_entity(catalog.models[m]) for m in chain]
        requests = [
            facts.request(
                principal,
                m,
                ctx,
                now=now,
                embargoed=self.embargoed,
                licence=lic,
                restore_cohort=facts.in_restore_cohort(principal, catalog.models[m]),
            )
            for m, lic in zip(chain, held, strict=True)
        ]
        # Most requests are allowed: evaluate the requested model alone, the chain only if needed.
        first = self.engine.evaluate(entities[:2], requests[:1])[0]
        served: str | None = None
        reasons: tuple[Reason, ...]
        if first.allowed:
            effect, served, reasons = Effect.ALLOW, model_id, (self.engine.permit_reason,)
        else:
            reasons = tuple(self._explain(r, catalog, model_id) for r in first.forbids)
            rest = self.engine.evaluate(entities, requests[1:]) if len(chain) > 1 else []
            served = next((m for m, v in zip(chain[1:], rest, strict=True) if v.allowed), None)
            effect = Effect.FALLBACK if served else Effect.DENY
        expiries = [principal.verified_until, *(lic.expires for lic in held if lic)]
        return Decision(
            effect=effect,
            model_requested=model_id,
            model_served=served,
            reasons=reasons,
            policy_hash=self.engine.hash,
            facts_version=f"p{principal.version}.c{catalog.version}.l{licences_version}",
            facts_digest=facts.digest(entities, requests),
            valid_until=min((t for t in expiries if t > now), default=float("inf")),
        )

    @staticmethod
    def _explain(reason: Reason, catalog: Catalog, model_id: str) -> Reason:
        """An operator control's refusal carries the operator's own reason, where one was given."""
        model = catalog.models[model_id]
        given = {
            "model-suspended": model.suspended_reason,
            "model-retired": model.retired_reason,
        }.get(reason.rule)
        if not given:
            return reason
        return Reason(
            reason.rule,
            f"{reason.reason} Operator's reason: {given}",
            reason.legal_basis,
            reason.status,
        )
