"""The matcher: every listed name of every loaded list in one index; a query goes
normalise -> near tokens -> candidate names (by shared token weight) -> name score -> facts
-> outcome. Built once per set of list versions and then read-only, so it is safe to share.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from clearance.screening import scoring
from clearance.screening.index import NameIndex
from clearance.screening.models import (
    Entry,
    Match,
    Outcome,
    Query,
    ScreeningResult,
    Thresholds,
)
from clearance.screening.normalise import is_abjad, token_readings, tokens

# How many candidate names, ranked by the token weight they share with the query, get a full
# score. Measured with bench/screening.py: recall stops improving well below this.
CANDIDATES = 24
# A token shared by more names than this does not by itself nominate candidates (it still
# counts in the score of names nominated by rarer tokens), unless the query has nothing rarer.
COMMON_POSTINGS = 400
# Two query tokens are read as one compound only on close evidence: a loose match of a long
# merged token ("bettyrivera" ~ "bitriver") is chance.
MERGED_SIMILARITY = 0.85
# A query token is tried as two listed tokens only from this length ("xijinping").
MIN_SPLIT_LEN = 5
# Hangul and Han: scripts whose given names arrive one token per syllable.
_SYLLABIC = re.compile("[\u3400-\u9fff\uf900-\ufaff\uac00-\ud7a3]")


@dataclass(frozen=True, slots=True)
class ListedName:
    list_name: str
    entry: Entry
    name: str
    tokens: tuple[str, ...]
    weak: bool


class Matcher:
    def __init__(self, names: Sequence[ListedName], thresholds: Thresholds) -> None:
        self.names = names
        self.thresholds = thresholds
        self.entries = {(n.list_name, n.entry.entry_id): n.entry for n in names}
        # Tokens romanised from an abjad (vowel-less) name: a Latin query reaches them by
        # consonant skeleton ("hussein" ~ "hsyn").
        self.index = NameIndex.build(
            [n.tokens for n in names], [i for i, n in enumerate(names) if is_abjad(n.name)]
        )
        # Weighed once here, not per query: scoring is most of a query's time.
        self.weighted = [self._weigh(n.tokens, is_abjad(n.name)) for n in names]

    @classmethod
    def build(
        cls, lists: Iterable[tuple[str, Sequence[Entry]]], thresholds: Thresholds | None = None
    ) -> Matcher:
        names = []
        for list_name, entries in lists:
            for entry in entries:
                for raw, weak in _names(entry):
                    toks = tokens(raw)
                    if toks:
                        names.append(ListedName(list_name, entry, raw, toks, weak))
        return cls(names, thresholds or Thresholds())

    def screen(self, query: Query) -> ScreeningResult:
        """Every reading of the query's name (`normalise.token_readings`) is screened; an entry
        keeps its best score."""
        abjad = is_abjad(query.name)
        syllabic = _SYLLABIC.search(query.name) is not None
        near: dict[str, dict[str, float]] = {}
        best: dict[tuple[str, str], Match] = {}
        for qtoks in token_readings(query.name):
            for q in qtoks:
                if q not in near:
                    near[q] = self.index.near(q, abjad)
            for variant in self._variants(qtoks, near, abjad):
                weighted = self._weigh(variant, abjad)
                for nid in self._candidates(variant, near):
                    match = self._score(query, weighted, near, nid, syllabic)
                    if match is None:
                        continue
                    key = (match.list_name, match.entry_id)
                    if key not in best or match.score > best[key].score:
                        best[key] = match
        ranked = sorted(best.values(), key=lambda m: -m.score)[: self.thresholds.max_matches]
        status = max((m.outcome for m in ranked), key=_severity, default=Outcome.CLEAR)
        return ScreeningResult(query.name, status, tuple(ranked))

    def _weigh(self, toks: tuple[str, ...], abjad: bool) -> scoring.WeightedName:
        return scoring.WeightedName.of(toks, [self.index.weight(t) for t in toks], abjad)

    def _variants(
        self, qtoks: tuple[str, ...], near: dict[str, dict[str, float]], abjad: bool
    ) -> list[tuple[str, ...]]:
        """The query's tokens, and the same with two neighbours written as one when the listed
        names know that compound ("Abd Allah" / "Abdullah", "Siraj al-Din" / "Sirajuddin"), or
        one token written as two listed ones ("Xijinping" / "Xi Jinping", "Jongun" / "Jong Un")."""
        variants = [qtoks]
        for i in range(len(qtoks) - 1):
            merged = qtoks[i] + qtoks[i + 1]
            if merged not in near:
                near[merged] = self.index.near(merged, abjad)
            if max(near[merged].values(), default=0.0) >= MERGED_SIMILARITY:
                variants.append((*qtoks[:i], merged, *qtoks[i + 2 :]))
        for i, q in enumerate(qtoks):
            if len(q) < MIN_SPLIT_LEN or max(near[q].values(), default=0.0) >= MERGED_SIMILARITY:
                continue
            for head, tail in self.index.splits(q):
                for part in (head, tail):
                    if part not in near:
                        near[part] = self.index.near(part, abjad)
                variants.append((*qtoks[:i], head, tail, *qtoks[i + 1 :]))
        return variants

    def _candidates(self, qtoks: tuple[str, ...], near: dict[str, dict[str, float]]) -> list[int]:
        postings, weight = self.index.postings, self.index.weight
        hits = [(t, sim) for q in qtoks for t, sim in near[q].items()]
        rare = [(t, sim) for t, sim in hits if len(postings[t]) <= COMMON_POSTINGS]
        acc: dict[int, float] = {}
        for tok, sim in rare or hits:
            gain = sim * weight(tok)
            for nid in postings[tok]:
                acc[nid] = acc.get(nid, 0.0) + gain
        return heapq.nlargest(CANDIDATES, acc, key=acc.__getitem__)

    def _score(
        self,
        query: Query,
        qtoks: scoring.WeightedName,
        near: dict[str, dict[str, float]],
        nid: int,
        syllabic: bool,
    ) -> Match | None:
        named = scoring.name_score(qtoks, self.weighted[nid], near, syllabic)
        if named.score < self.thresholds.potential - 0.15:
            return None
        listed = self.names[nid]
        entry = listed.entry
        why = ["name: " + ", ".join(f"{q}~{t}" if s < 1 else q for q, t, s in named.pairs)]
        score = named.score
        for delta, reason in (
            scoring.birth_date_evidence(query.birth_date, entry.birth_dates),
            scoring.nationality_evidence(query.nationalities, entry.nationalities),
            scoring.type_evidence(query.entity_type, entry.entity_type),
        ):
            score += delta
            if reason:
                why.append(reason)
        score = min(max(score, 0.0), 1.0)
        outcome = self.thresholds.outcome(score)
        if listed.weak and outcome is Outcome.MATCH:
            outcome = Outcome.POTENTIAL_MATCH
            why.append("weak alias: review, never an automatic block")
        if outcome is Outcome.CLEAR:
            return None
        if listed.name != entry.primary_name:
            why.append("matched an alias")
        return Match(
            list_name=listed.list_name,
            entry_id=entry.entry_id,
            name=entry.primary_name,
            matched_name=listed.name,
            score=score,
            outcome=outcome,
            why=tuple(why),
        )


def _names(entry: Entry) -> Iterable[tuple[str, bool]]:
    yield from ((n, False) for n in entry.names)
    yield from ((n, True) for n in entry.weak_names)


def _severity(outcome: Outcome) -> int:
    return {Outcome.CLEAR: 0, Outcome.POTENTIAL_MATCH: 1, Outcome.MATCH: 2}[outcome]
