"""An in-process classifier of the kind an operator installs ([guard] kind = "python"): here a
keyword rule, for tests only. A real one is the operator's own model."""

from __future__ import annotations

from collections.abc import Sequence

from clearance.guard.models import Turn


def classify(turns: Sequence[Turn]) -> dict[str, object]:
    text = turns[-1].text.lower()
    flagged = "ransomware" in text
    return {
        "flagged": flagged,
        "categories": ["cyber"] if flagged else [],
        "score": 0.9 if flagged else 0.05,
    }
