"""Scores: how well a query name matches one listed name, then how the other facts (date of
birth, nationality, entity type) move that score. Pure functions over plain data.

Names are compared as bags of tokens, so order never matters ("Putin Vladimir" and "Vladimir
Putin" score the same). Each query token is paired with at most one listed token; a pair counts
its similarity times both tokens' weights. Tokens left unpaired count against the score at full
weight, or at half weight once two or more tokens have paired (a dropped middle name or
patronymic is normal; a single shared token is not a match: "George Bush" / "George Habbash").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from clearance.screening.models import BirthDate, EntityType

UNPAIRED_DISCOUNT = 0.5
# Given + family name against a long listed name: when every query token pairs, and the pairs
# take the listed name's first and last name (patronymics aside), what lies between (an Arabic
# nasab chain "bin Muhammad bin Rabi", a Russian patronymic) counts only this much.
OMITTED_DISCOUNT = 0.15
# Russian, Ukrainian and Belarusian patronymics, as BGN/PCGN romanises them.
PATRONYMIC = re.compile(r"(ovich|evich|yevich|ovna|evna|yevna|ichna|ich)$")
# Facts: evidence for or against, on the name score's scale.
DOB_EXACT = 0.08
DOB_YEAR = 0.04
DOB_CONFLICT = -0.20
NATIONALITY_AGREES = 0.03
NATIONALITY_CONFLICT = -0.05
TYPE_CONFLICT = -0.30


@dataclass(frozen=True, slots=True)
class NameScore:
    score: float
    pairs: tuple[tuple[str, str, float], ...]


def name_score(
    query: Sequence[str],
    listed: Sequence[str],
    near: Mapping[str, Mapping[str, float]],
    weights: Mapping[str, float],
    unknown_weight: float,
    syllabic: bool = False,
) -> NameScore:
    """`near[q]` maps each query token to the listed tokens it resembles (with similarity).
    `syllabic`: the query was written in Hangul or Han, one token per syllable of the given
    name, so an unpaired query token is a different given name, never a dropped one."""
    options = []
    for i, q in enumerate(query):
        sims = near.get(q, {})
        for j, t in enumerate(listed):
            sim = sims.get(t)
            if sim is not None:
                options.append((sim, i, j))
    options.sort(reverse=True)
    used_q: set[int] = set()
    used_l: set[int] = set()
    pairs = []
    gained = 0.0
    for sim, i, j in options:
        if i in used_q or j in used_l:
            continue
        used_q.add(i)
        used_l.add(j)
        wq = weights.get(query[i], unknown_weight)
        wl = weights.get(listed[j], unknown_weight)
        gained += sim * (wq + wl)
        pairs.append((query[i], listed[j], sim))
    factor = UNPAIRED_DISCOUNT if len(pairs) >= 2 else 1.0
    omitted = _omitted(listed, used_l) if len(pairs) >= 2 and len(used_q) == len(query) else 1.0
    unpaired = sum(
        weights.get(q, unknown_weight) for i, q in enumerate(query) if i not in used_q
    ) * (1.0 / factor if syllabic else 1.0) + sum(
        weights.get(t, unknown_weight) * omitted for j, t in enumerate(listed) if j not in used_l
    )
    paired_total = sum(weights.get(query[i], unknown_weight) for i in used_q) + sum(
        weights.get(listed[j], unknown_weight) for j in used_l
    )
    total = paired_total + factor * unpaired
    return NameScore(gained / total if total else 0.0, tuple(pairs))


def _omitted(listed: Sequence[str], used: set[int]) -> float:
    """How much the listed name's unpaired tokens count (relative to other unpaired tokens)
    when every query token paired: little when the pairs hold both ends of the name."""
    ends = [j for j, t in enumerate(listed) if not PATRONYMIC.search(t)]
    if len(listed) >= 3 and ends and ends[0] in used and ends[-1] in used:
        return OMITTED_DISCOUNT / UNPAIRED_DISCOUNT
    return 1.0


def birth_date_evidence(
    declared: date | None, listed: Sequence[BirthDate]
) -> tuple[float, str | None]:
    """Exact date agrees: strong; year agrees (or falls in a listed range): some; a year more
    than one off every listed date: evidence against. No date on either side: nothing."""
    if declared is None or not listed:
        return 0.0, None
    for b in listed:
        if (b.year_from, b.month, b.day) == (declared.year, declared.month, declared.day):
            return DOB_EXACT, f"birth date {b.text()} agrees"
    for b in listed:
        if b.year_from <= declared.year <= b.year_to:
            same_month = b.month is None or b.month == declared.month
            if same_month and b.day is None:
                return DOB_YEAR, f"birth year {b.text()} agrees"
    for b in listed:
        if b.year_from - 1 <= declared.year <= b.year_to + 1:
            return 0.0, f"birth date near listed {b.text()}"
    shown = ", ".join(b.text() for b in listed[:3])
    return DOB_CONFLICT, f"birth date differs from listed {shown}"


def nationality_evidence(
    declared: Sequence[str], listed: Sequence[str]
) -> tuple[float, str | None]:
    if not declared or not listed:
        return 0.0, None
    shared = sorted(set(declared) & set(listed))
    if shared:
        return NATIONALITY_AGREES, f"nationality {', '.join(shared)} agrees"
    return NATIONALITY_CONFLICT, f"nationality differs from listed {', '.join(listed[:3])}"


def type_evidence(
    declared: EntityType | None, listed: EntityType | None
) -> tuple[float, str | None]:
    """A person is not a company or a ship. Vessels and aircraft count as entities here."""
    if declared is None or listed is None:
        return 0.0, None
    is_person = declared is EntityType.PERSON
    if is_person == (listed is EntityType.PERSON):
        return 0.0, None
    return TYPE_CONFLICT, f"listed as {listed.value}, query is {declared.value}"
