"""Catalog data: plain frozen records, read from the store and cached in memory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from clearance.catalog.restore import RestoreCohort


class UpstreamKind(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


class Classification(StrEnum):
    CONTROLLED = "controlled"
    UNCONTROLLED = "uncontrolled"


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    kind: UpstreamKind
    base_url: str
    api_key_env: str | None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A named evaluation score, evidence for the classifier (classification.py)."""

    name: str
    score: float
    source: str | None
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class Model:
    id: str
    upstream: str
    upstream_model: str
    controlled: bool
    rationale: str
    training_compute: float | None = None
    explicit_classification: Classification | None = None
    suspended: bool = False
    suspended_reason: str | None = None
    suspended_at: datetime | None = None
    fallbacks: tuple[str, ...] = ()
    evidence: str | None = None
    retired_reason: str | None = None
    retired_at: datetime | None = None
    # Classification from evidence: the N and D of an estimated 6·N·D, the evaluation scores,
    # and which rule classified the model ("explicit", "evaluation:NAME>=T", "training-compute>T").
    parameters: float | None = None
    tokens: float | None = None
    evaluations: tuple[Evaluation, ...] = ()
    classification_rule: str | None = None
    # Phased restore after a suspension (restore.py): None when not restoring.
    restore: RestoreCohort | None = None
    # What a million input / output tokens cost, for spend budgets (limits/); None: not priced.
    input_price: Decimal | None = None
    output_price: Decimal | None = None

    @property
    def priced(self) -> bool:
        return self.input_price is not None and self.output_price is not None

    @property
    def classification(self) -> Classification:
        return Classification.CONTROLLED if self.controlled else Classification.UNCONTROLLED

    @property
    def classification_source(self) -> str:
        """Which rule classified it: an operator's explicit decision, or the training compute."""
        if self.explicit_classification is not None:
            return "explicit"
        rule = self.classification_rule or ""
        return "evaluation" if rule.startswith("evaluation:") else "training_compute"

    @property
    def retired(self) -> bool:
        return self.retired_at is not None

    @property
    def state(self) -> str:
        """retired (for good) over suspended (the kill switch) over restoring (served to a
        cohort, widening) over active."""
        if self.retired:
            return "retired"
        if self.suspended:
            return "suspended"
        return "restoring" if self.restore is not None else "active"


@dataclass(frozen=True, slots=True)
class Catalog:
    """A consistent snapshot of every upstream and model, tagged with the catalog version."""

    version: int
    upstreams: dict[str, Upstream]
    models: dict[str, Model]

    def fallback_chain(self, model_id: str) -> tuple[str, ...]:
        """The models to try, in order, after `model_id`: depth-first through each fallback's own
        fallbacks (mythos-5 -> fable-5 -> fable-4), each model once."""
        seen = {model_id}
        order: list[str] = []
        stack = list(reversed(self.models[model_id].fallbacks))
        while stack:
            current = stack.pop()
            # A retired model is never a fallback target (retire() also unlinks it).
            if current in seen or current not in self.models or self.models[current].retired:
                continue
            seen.add(current)
            order.append(current)
            stack.extend(reversed(self.models[current].fallbacks))
        return tuple(order)


def upstream_json(u: Upstream) -> dict[str, object]:
    """The one JSON shape of an upstream: `upstreams list --json` and the operator API."""
    return {
        "name": u.name,
        "kind": u.kind.value,
        "base_url": u.base_url,
        "api_key_env": u.api_key_env,
    }


def model_json(m: Model) -> dict[str, object]:
    """The one JSON shape of a model: `models list --json` and the operator API."""
    return {
        "id": m.id,
        "upstream": m.upstream,
        "upstream_model": m.upstream_model,
        "classification": m.classification.value,
        "controlled": m.controlled,
        "classification_source": m.classification_source,
        "explicit": m.explicit_classification is not None,
        "rationale": m.rationale,
        "evidence": m.evidence,
        "training_compute": m.training_compute,
        "status": m.state,
        "suspended_reason": m.suspended_reason,
        "retired_reason": m.retired_reason,
        "retired_at": m.retired_at.isoformat() if m.retired_at else None,
        "fallbacks": list(m.fallbacks),
        "restore": m.restore.as_json() if m.restore is not None else None,
        "input_price": None if m.input_price is None else f"{m.input_price.normalize():f}",
        "output_price": None if m.output_price is None else f"{m.output_price.normalize():f}",
        **evidence_json(m),
    }


def evidence_json(m: Model) -> dict[str, object]:
    """The classification evidence in a model's JSON: the rule and what it was decided on."""
    return {
        "classification_rule": m.classification_rule or m.classification_source,
        "parameters": m.parameters,
        "tokens": m.tokens,
        "evaluations": [
            {
                "name": e.name,
                "score": e.score,
                "source": e.source,
                "recorded_at": e.recorded_at.isoformat(),
            }
            for e in m.evaluations
        ],
    }
