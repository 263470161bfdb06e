"""What a classifier concludes about a text, and what one check of a request recorded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["clear", "flagged", "error"]
Stage = Literal["prompt", "output"]


class GuardError(Exception):
    """The classifier could not give a usable verdict; `code` says why (for the audit entry)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code


@dataclass(frozen=True, slots=True)
class Turn:
    role: str  # user | assistant
    text: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """A classifier's answer on one text. `categories` are the classifier's own (S2, S14,
    illicit ...) and may be present on a clear verdict (unsafe in a category that does not flag).
    """

    outcome: Outcome
    categories: tuple[str, ...] = ()
    score: float = 0.0  # the classifier's confidence the text is unsafe, 0 to 1
    error: str | None = None  # outcome "error": a code (timeout, unreachable, bad_answer ...)

    @property
    def flagged(self) -> bool:
        return self.outcome == "flagged"


CLEAR = Verdict("clear")


@dataclass(frozen=True, slots=True)
class Check:
    """One check as the gateway records it: the verdict, a keyed digest of the text checked,
    and, when flagged, the excerpt that flagged it (for the vault, never for the log)."""

    stage: Stage
    verdict: Verdict
    classifier: str
    digest: str
    fail_open: bool  # a failed check that serves the model anyway (configured per model)
    elapsed_ms: int
    excerpt: str = ""

    def entry(self) -> dict[str, object]:
        """The `guard` object of an access_decision entry (schema 3): no text, a digest."""
        v = self.verdict
        return {
            "stage": self.stage,
            "outcome": v.outcome,
            "categories": list(v.categories),
            "score_milli": round(min(max(v.score, 0.0), 1.0) * 1000),
            "error": v.error,
            "classifier": self.classifier,
            "digest": self.digest,
            "fail_open": self.fail_open,
        }
