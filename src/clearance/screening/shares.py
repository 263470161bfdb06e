"""Ownership shares as files write them: "60", "60 %", "25.5%", "25-50%", ">50%", "<10%".

A share counts at its lower bound, the part of it that is known to be held: "25-50%" is 25,
">50%" is 50 (more than half: at the 50 % threshold either way), "<10%" is 0.
"""

from __future__ import annotations

import re

_NUMBER = r"(\d{1,3}(?:[.,]\d+)?)"
_EXACT = re.compile(rf"^{_NUMBER}\s*%?$")
_RANGE = re.compile(rf"^{_NUMBER}\s*%?\s*(?:-|\u2013|to)\s*{_NUMBER}\s*%?$")
_ABOVE = re.compile(rf"^(?:>|>=|≥|over|more than|at least)\s*{_NUMBER}\s*%?$")
_BELOW = re.compile(rf"^(?:<|<=|≤|under|less than)\s*{_NUMBER}\s*%?$")


def parse_share(text: str) -> float:
    """The counted share, 0 to 100; ValueError when `text` is no share or is over 100 %."""
    raw = " ".join(text.strip().lower().split())
    for pattern, pick in ((_EXACT, 0), (_RANGE, 0), (_ABOVE, 0), (_BELOW, None)):
        found = pattern.match(raw)
        if found is None:
            continue
        values = [float(v.replace(",", ".")) for v in found.groups()]
        if any(not 0 <= v <= 100 for v in values):
            raise ValueError(f"share {text!r} is over 100 %")
        return 0.0 if pick is None else values[pick]
    raise ValueError(f"{text!r} is not a share")
