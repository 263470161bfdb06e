"""A model controlled by an evaluation score changes who is served; a threshold removed from the
configuration serves it again: the classification is applied from the configuration on load."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from clearance.catalog import evidence
from clearance.catalog.classification import Thresholds
from clearance.config import Settings
from clearance.config.loader import settings_from_mapping
from clearance.policy.models import Decision, RequestContext
from clearance.policy.service import PolicyService
from clearance.principals import service as principals
from clearance.principals.models import UsPerson

from ..factories import add_catalog, make_settings, person


def with_eval_threshold(tmp_path: Path, db_url: str) -> Settings:
    make_settings(tmp_path, db_url)  # writes the policy file
    return settings_from_mapping(
        {
            "clearance": {"database_url": db_url},
            "policy": {"eval_thresholds": [{"name": "cyber-uplift", "score": 0.5}]},
        },
        base=tmp_path,
    )


def decide(engine: Engine, service: PolicyService, email: str, model: str) -> Decision:
    with engine.connect() as conn:
        user = principals.get_user(conn, email)
        return service.decide(conn, user, model, RequestContext(), allow_fallback=True)


def test_an_evaluation_over_its_threshold_changes_who_is_served(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    settings = with_eval_threshold(tmp_path, db_url)
    with engine.begin() as conn:
        add_catalog(conn)
        person(conn, "se@x.test", ["SE"])
        person(conn, "us@x.test", ["US"], UsPerson.CITIZEN)
    service = PolicyService(settings)
    # fable-4 (3e25 operations) is uncontrolled: the Swede is served it.
    assert decide(engine, service, "se@x.test", "fable-4").model_served == "fable-4"

    with engine.begin() as conn:
        model, _ = evidence.record(
            conn, Thresholds.configured(settings), "fable-4", evaluations=[("cyber-uplift", 0.8)]
        )
    assert model.classification_rule == "evaluation:cyber-uplift>=0.5"
    refused = decide(engine, service, "se@x.test", "fable-4")
    assert (refused.effect.value, refused.model_served) == ("deny", None)
    assert "controlled-foreign-person" in refused.rules
    assert decide(engine, service, "us@x.test", "fable-4").model_served == "fable-4"

    # The threshold taken out of the configuration: a worker started with it serves fable-4 again.
    plain = PolicyService(make_settings(tmp_path, db_url))
    assert decide(engine, plain, "se@x.test", "fable-4").model_served == "fable-4"
