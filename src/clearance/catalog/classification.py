"""Whether a model is controlled: an explicit decision wins, else compute over a threshold."""

from __future__ import annotations

from dataclasses import dataclass

from clearance.catalog.models import Classification
from clearance.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class ClassificationResult:
    controlled: bool
    rationale: str
    training_compute: float | None


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
        return ClassificationResult(explicit is Classification.CONTROLLED, rationale, compute)
    if compute is None:
        raise InvalidInput(
            "give --training-compute, --params with --tokens, or an explicit --classification"
        )
    how = "estimated as 6·N·D" if estimated else "reported"
    # The threshold follows 90 FR 4544 (ECCN 4E091): "more than 1e26 operations".
    if compute > threshold:
        text = f"training compute {compute:.3g} operations ({how}) exceeds {threshold:.3g}"
        return ClassificationResult(True, text, compute)
    text = f"training compute {compute:.3g} operations ({how}) within {threshold:.3g}"
    return ClassificationResult(False, text, compute)
