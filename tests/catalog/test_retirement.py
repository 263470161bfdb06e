"""Retirement through the store and the policy, on SQLite and PostgreSQL: refused to everyone
under its own rule and legal basis, never a fallback target, not to be changed or undone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from clearance.catalog import service as catalog
from clearance.catalog.models import Catalog, Classification, Model
from clearance.errors import Conflict
from clearance.policy.models import Decision, RequestContext
from clearance.policy.service import PolicyService
from clearance.principals import service as principals
from clearance.principals.models import UsPerson

from ..factories import add_catalog, make_settings, person


def decide(engine: Engine, service: PolicyService, email: str, model: str) -> Decision:
    with engine.connect() as conn:
        user = principals.get_user(conn, email)
        return service.decide(conn, user, model, RequestContext(), allow_fallback=True)


def test_retired_model_is_refused_by_its_rule_and_unlinked_from_fallbacks(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    with engine.begin() as conn:
        add_catalog(conn)  # mythos-5 -> fable-5 -> fable-4
        person(conn, "us@x.test", ["US"], UsPerson.CITIZEN)
        person(conn, "se@x.test", ["SE"])
    service = PolicyService(make_settings(tmp_path, db_url))
    assert decide(engine, service, "se@x.test", "mythos-5").model_served == "fable-4"

    with engine.begin() as conn:
        model, unlinked = catalog.retire(conn, "fable-5", "superseded by fable-6")
    assert model.retired and unlinked == ["mythos-5"]

    # A US citizen asking for it is refused it, named and explained; its own fallback still
    # applies, as for a suspended model.
    d = decide(engine, service, "us@x.test", "fable-5")
    assert (d.effect.value, d.model_served, d.rules) == ("fallback", "fable-4", ("model-retired",))
    assert "superseded by fable-6" in d.reasons[0].reason
    assert "compliance programme" in d.reasons[0].legal_basis
    # mythos-5 no longer falls back to it: the Swede is refused outright.
    d = decide(engine, service, "se@x.test", "mythos-5")
    assert (d.effect.value, d.model_served) == ("deny", None)

    with engine.begin() as conn:
        for change in (
            lambda: catalog.update_model(conn, "mythos-5", fallbacks=("fable-5",)),
            lambda: catalog.update_model(conn, "fable-5", upstream_model="other"),
            lambda: catalog.reclassify(conn, "fable-5", Classification.UNCONTROLLED, "r"),
            lambda: catalog.retire(conn, "fable-5", "again"),
        ):
            with pytest.raises(Conflict, match="retired"):
                change()
        # Resuming (a suspension) does not un-retire it.
        assert catalog.resume(conn, "fable-5").state == "retired"


def test_fallback_chain_never_offers_a_retired_model() -> None:
    """Even a link left behind (retire() removes them) is skipped."""
    retired_at = datetime(2026, 12, 1, tzinfo=UTC)
    models = {
        "a": Model("a", "up", "a", controlled=True, rationale="t", fallbacks=("b", "c")),
        "b": Model("b", "up", "b", controlled=False, rationale="t", retired_at=retired_at),
        "c": Model("c", "up", "c", controlled=False, rationale="t"),
    }
    assert Catalog(1, {}, models).fallback_chain("a") == ("c",)
