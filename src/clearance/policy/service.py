"""The policy as a service: the engine, the catalog and licences, refreshed by version counters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from sqlalchemy.engine import Connection

from clearance.catalog.classification import Thresholds
from clearance.catalog.models import Catalog
from clearance.catalog.service import load_catalog
from clearance.config import Settings
from clearance.policy.decide import Decider
from clearance.policy.engine import PolicyEngine
from clearance.policy.facts import principal_facts
from clearance.policy.models import Decision, PrincipalFacts, RequestContext
from clearance.principals.models import Licence, User
from clearance.principals.service import load_licences
from clearance.store import versions


@dataclass(frozen=True, slots=True)
class PolicyState:
    catalog: Catalog
    licences: Mapping[int, tuple[Licence, ...]]
    licences_version: int


class PolicyService:
    """Holds the parsed policy and a snapshot of catalog + licences; `refresh` reloads only what
    changed (compared by version counter), so callers may call it as often as they like."""

    def __init__(self, settings: Settings) -> None:
        self.engine = PolicyEngine.from_files(settings.policy.files)
        self.decider = Decider(
            self.engine, settings.policy.embargoed_countries, settings.policy.decision_cache_size
        )
        self.state: PolicyState | None = None
        # The catalog is classified from its evidence against the configured thresholds.
        self.thresholds = Thresholds.configured(settings)

    def refresh(self, conn: Connection) -> PolicyState:
        current = versions.read_all(conn)
        cat_v = current.get(versions.Kind.CATALOG.value, 0)
        lic_v = current.get(versions.Kind.LICENCES.value, 0)
        state = self.state
        if state is None:
            state = PolicyState(load_catalog(conn, self.thresholds), load_licences(conn), lic_v)
        else:
            if state.catalog.version != cat_v:
                state = replace(state, catalog=load_catalog(conn, self.thresholds))
            if state.licences_version != lic_v:
                state = replace(state, licences=load_licences(conn), licences_version=lic_v)
        self.state = state
        return state

    def decide(
        self,
        conn: Connection,
        user: User,
        model_id: str,
        ctx: RequestContext,
        *,
        allow_fallback: bool,
        now: float | None = None,
        principal: PrincipalFacts | None = None,
    ) -> Decision:
        """`now`: decide as of that moment (an auditor's "was this right then?"); `principal`:
        the person's facts as of then, when they differ from today's."""
        self.refresh(conn)
        return self.decide_in_memory(
            principal or principal_facts(user), model_id, ctx, allow_fallback=allow_fallback,
            now=now,
        )  # fmt: skip

    def decide_in_memory(
        self,
        principal: PrincipalFacts,
        model_id: str,
        ctx: RequestContext,
        *,
        allow_fallback: bool,
        now: float | None = None,
    ) -> Decision:
        """Decide against the snapshot already held (the gateway's hot path: no database)."""
        state = self.state
        assert state is not None, "PolicyService.refresh() not called"
        return self.decider.decide(
            principal,
            model_id,
            ctx,
            catalog=state.catalog,
            licences=state.licences,
            licences_version=state.licences_version,
            allow_fallback=allow_fallback,
            now=now,
        )
