"""Catalog data: plain frozen records, read from the store and cached in memory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


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

    @property
    def classification(self) -> Classification:
        return Classification.CONTROLLED if self.controlled else Classification.UNCONTROLLED


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
            if current in seen or current not in self.models:
                continue
            seen.add(current)
            order.append(current)
            stack.extend(reversed(self.models[current].fallbacks))
        return tuple(order)
