"""Whether a model is controlled, and by which rule: an explicit decision, else an evaluation
score at or above its configured threshold, else training compute above the compute threshold,
else uncontrolled. Pure: the evidence and the thresholds come in, the decision goes out."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clearance.catalog.models import Classification, Model
from clearance.errors import InvalidInput

if TYPE_CHECKING:
    from clearance.config import Settings


@dataclass(frozen=True, slots=True)
class ClassificationResult:
    controlled: bool
    rationale: str
    training_compute: float | None
    rule: str = ""  # which rule classified it: "explicit", "evaluation:NAME>=T", ...
    parameters: float | None = None  # the N and D of a compute estimated as 6·N·D
    tokens: float | None = None


def estimate_compute(params: float, tokens: float) -> float:
    """C ≈ 6·N·D training operations (Kaplan et al. 2020, arXiv:2001.08361; Epoch AI 2022)."""
    if params <= 0 or tokens <= 0:
        raise InvalidInput("--params and --tokens must be positive")
    return 6.0 * params * tokens


def classify(
    *,
    threshold: float,
    explicit: Classification | None = None,
    rationale: str | None = None,
    training_compute: float | None = None,
    params: float | None = None,
    tokens: float | None = None,
) -> ClassificationResult:
    if training_compute is not None and (params is not None or tokens is not None):
        raise InvalidInput("give --training-compute or --params with --tokens, not both")
    if (params is None) != (tokens is None):
        raise InvalidInput("--params and --tokens go together")
    compute = training_compute
    estimated = False
    if params is not None and tokens is not None:
        compute = estimate_compute(params, tokens)
        estimated = True
    if compute is not None and compute <= 0:
        raise InvalidInput("training compute must be positive")

    if explicit is not None:
        if not rationale or not rationale.strip():
            raise InvalidInput("an explicit --classification needs a --rationale")
        return ClassificationResult(
            explicit is Classification.CONTROLLED, rationale, compute, EXPLICIT, params, tokens
        )
    if compute is None:
        raise InvalidInput(
            "give --training-compute, --params with --tokens, or an explicit --classification"
        )
    how = "estimated as 6·N·D" if estimated else "reported"
    # The threshold follows 90 FR 4544 (ECCN 4E091): "more than 1e26 operations".
    if compute > threshold:
        text = f"training compute {compute:.3g} operations ({how}) exceeds {threshold:.3g}"
        return ClassificationResult(True, text, compute, compute_rule(threshold), params, tokens)
    text = f"training compute {compute:.3g} operations ({how}) within {threshold:.3g}"
    return ClassificationResult(False, text, compute, BELOW, params, tokens)


EXPLICIT = "explicit"
BELOW = "below-thresholds"  # no rule controlled it
_EVAL_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def _short(value: float) -> str:
    return f"{value:.3g}".replace("e+", "e")


def compute_rule(threshold: float) -> str:
    # "more than 1e26 operations" (90 FR 4544, ECCN 4E091): strictly above, unlike evaluations.
    return f"training-compute>{_short(threshold)}"


def eval_rule(name: str, threshold: float) -> str:
    return f"evaluation:{name}>={_short(threshold)}"


def check_eval_name(name: str) -> str:
    if not _EVAL_NAME.match(name):
        raise InvalidInput(
            f"invalid evaluation name {name!r}: lower-case letters, digits and . _ - (at most 64)"
        )
    return name


def check_score(text: str, what: str) -> float:
    """A finite number from the command line or a request ("0.62"; not "nan", "inf" or "high")."""
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"{what} must be a number, not {text!r}") from None
    if not math.isfinite(value):
        raise InvalidInput(f"{what} must be a finite number, not {text!r}")
    return value


def parse_pair(text: str, what: str) -> tuple[str, float]:
    """NAME=NUMBER, as in `--eval cyber-uplift=0.62`."""
    name, sep, value = text.partition("=")
    if not sep:
        raise InvalidInput(f"{what} {text!r}: expected NAME=NUMBER, e.g. cyber-uplift=0.5")
    name = check_eval_name(name.strip())
    return name, check_score(value.strip(), f"{what} {name}")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The configured thresholds: [policy] controlled_compute_threshold and eval_thresholds."""

    compute: float
    evaluations: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_tables(cls, compute: float, tables: Iterable[Mapping[str, object]]) -> Thresholds:
        evals: dict[str, float] = {}
        for t in tables:
            name, score = t["name"], t["score"]
            assert isinstance(name, str) and isinstance(score, int | float)
            evals[name] = float(score)
        return cls(compute, evals)

    @classmethod
    def configured(cls, settings: Settings) -> Thresholds:
        policy = settings.policy
        return cls.from_tables(policy.controlled_compute_threshold, policy.eval_thresholds)

    def as_json(self) -> dict[str, object]:
        return {"compute": self.compute, "evaluations": dict(sorted(self.evaluations.items()))}


def classify_model(model: Model, thresholds: Thresholds) -> ClassificationResult:
    """Classify a stored model from its evidence. Precedence: the explicit decision, then any
    evaluation at or above its threshold (the first by name), then training compute above the
    compute threshold; otherwise uncontrolled."""
    compute = model.training_compute
    if model.explicit_classification is not None:
        return ClassificationResult(
            model.explicit_classification is Classification.CONTROLLED,
            model.rationale,
            compute,
            EXPLICIT,
        )
    scores = {e.name: e for e in model.evaluations}
    for name, threshold in sorted(thresholds.evaluations.items()):
        found = scores.get(name)
        if found is not None and found.score >= threshold:
            source = f" ({found.source})" if found.source else ""
            text = (
                f"evaluation {name} scored {found.score:g}{source}, "
                f"at or above the threshold {threshold:g}"
            )
            return ClassificationResult(True, text, compute, eval_rule(name, threshold))
    if compute is None:
        return ClassificationResult(
            False, "no evidence at or above a threshold (no training compute recorded)", None, BELOW
        )
    how = "estimated as 6·N·D" if model.parameters is not None else "reported"
    if compute > thresholds.compute:
        text = f"training compute {compute:.3g} operations ({how}) exceeds {thresholds.compute:.3g}"
        return ClassificationResult(True, text, compute, compute_rule(thresholds.compute))
    text = f"training compute {compute:.3g} operations ({how}) within {thresholds.compute:.3g}"
    return ClassificationResult(False, text, compute, BELOW)


@dataclass(frozen=True, slots=True)
class Reclassification:
    """A model a proposed threshold change would move, and why."""

    model_id: str
    before: ClassificationResult
    after: ClassificationResult

    def as_json(self) -> dict[str, object]:
        def side(r: ClassificationResult) -> str:
            return "controlled" if r.controlled else "uncontrolled"

        return {
            "model": self.model_id,
            "from": side(self.before),
            "to": side(self.after),
            "from_rule": self.before.rule,
            "to_rule": self.after.rule,
            "why": self.after.rationale,
        }


def propose(
    current: Thresholds,
    *,
    compute: float | None = None,
    evaluations: Iterable[tuple[str, float]] = (),
    drop: Iterable[str] = (),
) -> Thresholds:
    """The configured thresholds with a proposed change: a new compute threshold, evaluation
    thresholds set (NAME=T) or dropped (`clearance models thresholds`, the console's preview)."""
    if compute is not None and (not math.isfinite(compute) or compute <= 0):
        raise InvalidInput(f"--compute must be positive, not {compute!r}")
    proposed = dict(current.evaluations)
    for name in drop:
        if name not in proposed:
            raise InvalidInput(f"--drop-eval {name!r}: no such threshold is configured")
        del proposed[name]
    proposed.update(evaluations)
    return Thresholds(current.compute if compute is None else compute, proposed)


def preview(
    models: Iterable[Model], current: Thresholds, proposed: Thresholds
) -> list[Reclassification]:
    """The models whose classification would change under `proposed`; nothing is applied.
    Retired models are left out (they serve no one); explicit decisions never move."""
    changes = []
    for m in models:
        if m.retired:
            continue
        before, after = classify_model(m, current), classify_model(m, proposed)
        if before.controlled != after.controlled:
            changes.append(Reclassification(m.id, before, after))
    return changes
