"""The classifier over evidence, pure: explicit > evaluation >= threshold > compute > threshold."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from clearance.catalog.classification import Thresholds, classify_model, parse_pair, preview
from clearance.catalog.evidence import estimate
from clearance.catalog.models import Classification, Evaluation, Model
from clearance.errors import InvalidInput

NOW = datetime(2026, 1, 1, tzinfo=UTC)
T = Thresholds(1e26, {"bio": 0.3, "cyber-uplift": 0.5})


def model(compute: float | None = None, **scores: float) -> Model:
    evals = tuple(Evaluation(n.replace("_", "-"), s, None, NOW) for n, s in scores.items())
    return Model("m", "u", "m", False, "", training_compute=compute, evaluations=evals)


@pytest.mark.parametrize(
    ("m", "controlled", "rule"),
    [
        (model(), False, "below-thresholds"),
        (model(1e26), False, "below-thresholds"),  # "more than 1e26": equal is not above
        (model(1.01e26), True, "training-compute>1e26"),
        (model(1e25, cyber_uplift=0.5), True, "evaluation:cyber-uplift>=0.5"),  # at: controls
        (model(1e25, cyber_uplift=0.499), False, "below-thresholds"),
        (model(1e27, cyber_uplift=0.6), True, "evaluation:cyber-uplift>=0.5"),  # eval > compute
        (model(None, bio=0.4, cyber_uplift=0.9), True, "evaluation:bio>=0.3"),  # first by name
        (model(1e25, unnamed=99.0), False, "below-thresholds"),  # no threshold names it
    ],
)
def test_rules_and_precedence(m: Model, controlled: bool, rule: str) -> None:
    result = classify_model(m, T)
    assert (result.controlled, result.rule) == (controlled, rule)


def test_the_explicit_decision_wins_over_every_rule() -> None:
    m = replace(
        model(1e27, cyber_uplift=1.0),
        explicit_classification=Classification.UNCONTROLLED,
        rationale="counsel's opinion",
    )
    result = classify_model(m, T)
    assert (result.controlled, result.rule, result.rationale) == (
        False,
        "explicit",
        "counsel's opinion",
    )


def test_six_n_d() -> None:
    # Kaplan et al. 2020: C ≈ 6·N·D; a 70e9-parameter model on 1.4e12 tokens: 5.88e23.
    assert estimate(70e9, 1.4e12) == pytest.approx(5.88e23)
    with pytest.raises(InvalidInput, match="--parameters must be a positive number"):
        estimate(-1, 1e12)


def test_preview_names_only_the_flips_and_never_moves_explicit_or_retired() -> None:
    a, b = replace(model(2e26), id="a"), replace(model(None, cyber_uplift=0.45), id="b")
    fixed = replace(model(5e26), id="fixed", explicit_classification=Classification.CONTROLLED)
    gone = replace(model(5e26), id="gone", retired_at=NOW)
    changes = preview([a, b, fixed, gone], T, Thresholds(3e26, {"cyber-uplift": 0.4}))
    assert [(c.model_id, c.before.controlled, c.after.controlled) for c in changes] == [
        ("a", True, False),
        ("b", False, True),
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [("x", "NAME=NUMBER"), ("x=inf", "finite"), ("x=", "a number"), ("X=1", "evaluation name")],
)
def test_bad_pairs(text: str, error: str) -> None:
    with pytest.raises(InvalidInput, match=error):
        parse_pair(text, "--eval")
