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
# The evidence that discount needs: both ends paired at least this closely (exact, or one
# edit in ten letters; between a vowel-less and a Latin spelling, the same consonants:
# index.ABJAD_SIMILARITY), and no query token shorter than this.
NEAR_EXACT = 0.90
VOWEL_LESS_NEAR_EXACT = 0.85
MIN_OMITTING_TOKEN = 3
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


@dataclass(frozen=True, slots=True)
class WeightedName:
    """A name's tokens with their weights in the index, weighed once: listed names when the
    matcher is built, a query once per variant."""

    tokens: tuple[str, ...]
    weights: tuple[float, ...]
    total: float
    # First and last token that is not a patronymic, for names of three tokens or more.
    ends: tuple[int, int] | None
    vowel_less: bool  # romanised from a script that leaves short vowels out

    @classmethod
    def of(
        cls, tokens: tuple[str, ...], weights: Sequence[float], vowel_less: bool = False
    ) -> WeightedName:
        ends = [j for j, t in enumerate(tokens) if not PATRONYMIC.search(t)]
        return cls(
            tokens,
            tuple(weights),
            sum(weights),
            (ends[0], ends[-1]) if len(tokens) >= 3 and ends else None,
            vowel_less,
        )


def name_score(
    query: WeightedName,
    listed: WeightedName,
    near: Mapping[str, Mapping[str, float]],
    syllabic: bool = False,
) -> NameScore:
    """`near[q]` maps each query token to the listed tokens it resembles (with similarity).
    `syllabic`: the query was written in Hangul or Han, one token per syllable of the given
    name, so an unpaired query token is a different given name, never a dropped one."""
    qtoks, ltoks = query.tokens, listed.tokens
    options = []
    for i, q in enumerate(qtoks):
        sims = near.get(q)
        if not sims:
            continue
        for j, t in enumerate(ltoks):
            sim = sims.get(t)
            if sim is not None:
                options.append((sim, i, j))
    if not options:
        return NameScore(0.0, ())
    options.sort(reverse=True)
    qw, lw = query.weights, listed.weights
    paired_sim: dict[int, float] = {}  # listed position -> similarity of its pair
    used_q: set[int] = set()
    pairs = []
    gained = paired_q = paired_l = 0.0
    for sim, i, j in options:
        if i in used_q or j in paired_sim:
            continue
        used_q.add(i)
        paired_sim[j] = sim
        paired_q += qw[i]
        paired_l += lw[j]
        gained += sim * (qw[i] + lw[j])
        pairs.append((qtoks[i], ltoks[j], sim))
    factor = UNPAIRED_DISCOUNT if len(pairs) >= 2 else 1.0
    unpaired_q = query.total - paired_q
    unpaired_l = listed.total - paired_l
    if syllabic:
        unpaired_q /= factor
    if len(pairs) >= 2 and len(used_q) == len(qtoks) and _omits_middle(query, listed, paired_sim):
        unpaired_l *= OMITTED_DISCOUNT / UNPAIRED_DISCOUNT
    total = paired_q + paired_l + factor * (unpaired_q + unpaired_l)
    return NameScore(gained / total if total > 0 else 0.0, tuple(pairs))


def _omits_middle(query: WeightedName, listed: WeightedName, paired: Mapping[int, float]) -> bool:
    """Every query token paired: is this given + family name against a long listed name, whose
    middle (nasab chain, patronymic, second given name) may count little? Only on strong
    evidence, since common names pair by chance ("Ahmed Kaya" / "Kawa Omar Ahmed", "Sergei
    Rodriguez" / "Sergio Armando Orozco Rodriguez"): both ends of the listed name paired
    near-exactly, every query token more than an initial or a particle, and (Latin on both
    sides) not a single left-out word."""
    if listed.ends is None:
        return False
    first, last = listed.ends
    vowel_less = query.vowel_less or listed.vowel_less
    close = VOWEL_LESS_NEAR_EXACT if vowel_less else NEAR_EXACT
    if not (
        paired.get(first, 0.0) >= close
        and paired.get(last, 0.0) >= close
        and all(len(q) >= MIN_OMITTING_TOKEN for q in query.tokens)
    ):
        return False
    if vowel_less:
        return True
    # Between Latin spellings, one left-out word that is not a patronymic is a second given
    # name or surname, which common names share ("Daniel Rodriguez" / "Daniel Belloso
    # Rodriguez"); a chain of two or more is a long name's middle.
    middle = [
        t for j, t in enumerate(listed.tokens) if j not in paired and not PATRONYMIC.search(t)
    ]
    return len(middle) != 1


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
