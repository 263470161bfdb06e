"""Decision data: what the policy answers, and the facts it answered from."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Effect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    FALLBACK = "fallback"


class Action(StrEnum):
    INFERENCE = "inference"
    FINE_TUNE = "fine_tune"
    DOWNLOAD_WEIGHTS = "download_weights"


@dataclass(frozen=True, slots=True)
class Reason:
    rule: str
    reason: str
    legal_basis: str
    # The HTTP status a refusal by this rule answers with (the rule's @status; RFC 7725's 451
    # unless the rule is not a legal restriction, e.g. a usage-policy refusal, 403).
    status: int = field(default=451, compare=False)

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "reason": self.reason, "legal_basis": self.legal_basis}


@dataclass(frozen=True, slots=True)
class LicenceFact:
    number: str
    nationalities: frozenset[str]
    expires: int  # Unix seconds


@dataclass(frozen=True, slots=True)
class PrincipalFacts:
    """Everything the policy knows about a person, in plain values."""

    subject_id: str
    nationalities: frozenset[str]
    us_person: str
    verified_until: int  # Unix seconds; 0 when never verified
    residence: str
    screening: str
    org_id: int | None
    version: int
    suspended: bool = False  # an operator's suspension of the person (`users suspend`)
    usage_hold: bool = False  # controlled models held after misuse-guard flags (guard/strikes.py)
    # The organisation's ownership screening (screening/ownership.py).
    org_ownership: str = "clear"  # clear | review | restricted
    org_owner_share: float = 0.0  # percent held by blocked owners under the rule
    org_ownership_rule: str = ""
    org_headquarters: str = ""  # ISO 3166-1 alpha-2 of the org's headquarters; "" unknown
    org_parent_country: str = ""  # ... and of its ultimate parent's
    # How the identity document was verified: chip | visual | assertion | attestation; "" none.
    document_assurance: str = ""


@dataclass(frozen=True, slots=True)
class GuardFact:
    """The misuse guard's verdict on this request's text, as the policy sees it (context.guard)."""

    outcome: str  # clear | flagged | error
    categories: tuple[str, ...] = ()
    score: float = 0.0  # 0 to 1
    fail_open: bool = False


@dataclass(frozen=True, slots=True)
class RequestContext:
    action: Action = Action.INFERENCE
    ip_country: str = ""
    guard: GuardFact | None = None  # per request: a decision with one is never cached


@dataclass(frozen=True, slots=True)
class Decision:
    effect: Effect
    model_requested: str
    model_served: str | None
    reasons: tuple[Reason, ...]
    policy_hash: str
    facts_version: str
    facts_digest: str
    # Until when this answer stays true without any stored fact changing (an expiry).
    valid_until: float = field(default=float("inf"), compare=False)
    _rules: tuple[str, ...] = field(init=False, repr=False, compare=False, default=())

    @property
    def allowed(self) -> bool:
        return self.effect is not Effect.DENY

    @property
    def rules(self) -> tuple[str, ...]:
        return self._rules

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rules", tuple(r.rule for r in self.reasons))

    def as_dict(self) -> dict[str, object]:
        return {
            "effect": self.effect.value,
            "model_requested": self.model_requested,
            "model_served": self.model_served,
            "reasons": [r.as_dict() for r in self.reasons],
            "policy_hash": self.policy_hash,
            "facts_version": self.facts_version,
        }
