"""Candidate generation: an inverted index from name tokens to listed names, reached through
fuzzy token look-ups, so a query touches only the names that share a (near-)token with it.

Near tokens are found three ways, none of which scans the vocabulary:
- exact token;
- edit distance (optimal string alignment: a swap of two adjacent letters is one edit) up to 2
  through a deletion index (the SymSpell idea: a token and its one-letter
  deletions are keys; two strings within one substitution, insertion, deletion or transposition
  share a key);
- the same consonant skeleton, for spellings that differ in vowels ("muhammad" / "mhmd").

Token weights are inverse document frequencies: a token that many listed names share ("mohammed",
"trading") says little about which party someone is; a rare one ("putin") says a lot.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz.distance import OSA

from clearance.screening.normalise import skeleton

# Below these lengths a token is matched exactly: one edit in "ali" is another name ("ari").
MIN_FUZZY_LEN = 4
MIN_SKELETON_LEN = 3
# Romanised Arabic keeps only consonants and long vowels ("sd" for Sa'd, "ywns" for Yunis).
MIN_ABJAD_SKELETON_LEN = 2
# A near token counts when this similar (1 - edits / longer length); below, it is no evidence.
MIN_TOKEN_SIMILARITY = 0.75
# People rarely mistype the first letter; a different one mostly means a different name
# ("davis" / "navis", "david" / "javid"), so it costs this much similarity.
FIRST_LETTER_PENALTY = 0.1
# Vowel-only differences are good evidence, not perfect. Between two Latin spellings
# ("mohammed" / "muhamad") the tokens must also start alike and stay close; a vowel-poor token
# (romanised Arabic or Hebrew: "mhmd", "hsyn") may differ in every vowel.
SKELETON_SIMILARITY = 0.80
ABJAD_SIMILARITY = 0.90
# ...but two consonants in common are weak evidence ("donna" / "dyn").
SHORT_ABJAD_SIMILARITY = 0.85
MIN_SKELETON_EDIT_SIMILARITY = 0.62


def _deletions(token: str) -> set[str]:
    return {token[:i] + token[i + 1 :] for i in range(len(token))}


@dataclass(slots=True)
class NameIndex:
    """Tokens of every listed name, with postings, deletion and skeleton keys and weights."""

    postings: dict[str, list[int]]
    deletions: dict[str, list[str]]
    skeletons: dict[str, list[str]]  # every token, by skeleton
    abjad_skeletons: dict[str, list[str]]  # the vowel-less tokens (`abjad`) alone
    weights: dict[str, float]
    unknown_weight: float
    abjad: frozenset[str]  # tokens romanised from names written without short vowels

    @classmethod
    def build(cls, names: Sequence[tuple[str, ...]], abjad: Iterable[int] = ()) -> NameIndex:
        """`abjad`: the ids of names written in Arabic, Persian, Hebrew... script."""
        postings: dict[str, list[int]] = defaultdict(list)
        for nid, toks in enumerate(names):
            for tok in set(toks):
                postings[tok].append(nid)
        abjad_ids = set(abjad)
        abjad_tokens = {t for nid in abjad_ids for t in names[nid]}
        # A token that a name in another script also has is not only a vowel-less spelling
        # ("son", "ali"): it is matched as the Latin token it also is.
        abjad_tokens -= {t for nid, toks in enumerate(names) if nid not in abjad_ids for t in toks}
        deletions: dict[str, list[str]] = defaultdict(list)
        skeletons: dict[str, list[str]] = defaultdict(list)
        abjad_skeletons: dict[str, list[str]] = defaultdict(list)
        for tok in postings:
            if len(tok) >= MIN_FUZZY_LEN:
                for key in _deletions(tok):
                    deletions[key].append(tok)
            skel = skeleton(tok)
            if len(skel) >= MIN_ABJAD_SKELETON_LEN:
                skeletons[skel].append(tok)
                if tok in abjad_tokens:
                    abjad_skeletons[skel].append(tok)
        total = len(names) + 1
        weights = {t: math.log(total / len(p)) + 1.0 for t, p in postings.items()}
        return cls(
            dict(postings),
            dict(deletions),
            dict(skeletons),
            dict(abjad_skeletons),
            weights,
            math.log(total) + 1,
            frozenset(abjad_tokens),
        )

    def weight(self, token: str) -> float:
        return self.weights.get(token, self.unknown_weight)

    def near(self, token: str, abjad: bool = False) -> dict[str, float]:
        """Listed tokens similar to `token`, with their similarity in (0, 1]. `abjad`: the token
        was romanised from a script that leaves vowels out (Arabic, Hebrew, Syriac, Thaana)."""
        found: dict[str, float] = {}
        if token in self.postings:
            found[token] = 1.0
        skel = skeleton(token)
        if len(skel) >= MIN_ABJAD_SKELETON_LEN:
            # Either side vowel-less: an abjad query against every token, a Latin one against
            # the vowel-less tokens only.
            vowel_less = (self.skeletons if abjad else self.abjad_skeletons).get(skel, ())
            for cand in vowel_less:
                sim = _skeleton_similarity(token, cand, abjad=True)
                if sim > found.get(cand, 0.0):
                    found[cand] = sim
        if len(token) < MIN_FUZZY_LEN:
            return found
        keys = _deletions(token)
        candidates: set[str] = set(self.deletions.get(token, ()))
        for key in keys:
            if key in self.postings:
                candidates.add(key)
            candidates.update(self.deletions.get(key, ()))
        candidates.discard(token)
        for cand in candidates:
            sim = _edit_similarity(token, cand)
            if sim >= MIN_TOKEN_SIMILARITY and sim > found.get(cand, 0.0):
                found[cand] = sim
        if not abjad and len(skel) >= MIN_SKELETON_LEN:
            # Latin to Latin: spellings that differ in vowels ("mohammed" / "muhamad").
            for cand in self.skeletons.get(skel, ()):
                if len(cand) < MIN_FUZZY_LEN or cand in self.abjad:
                    continue
                sim = _skeleton_similarity(token, cand, abjad=False)
                if sim > found.get(cand, 0.0):
                    found[cand] = sim
        return found

    def splits(self, token: str) -> list[tuple[str, str]]:
        """`token` cut in two listed tokens, each at least two letters: "xijinping" ->
        [("xi", "jinping")]."""
        postings = self.postings
        return [
            (token[:i], token[i:])
            for i in range(2, len(token) - 1)
            if token[:i] in postings and token[i:] in postings
        ]


def _edit_similarity(a: str, b: str) -> float:
    sim = OSA.normalized_similarity(a, b)
    swapped = a[:2] == b[1::-1]
    return sim if a[0] == b[0] or swapped else sim - FIRST_LETTER_PENALTY


def _lead(token: str) -> str:
    return "a" if token[0] in "aeiou" else token[0]


def _skeleton_similarity(a: str, b: str, abjad: bool) -> float:
    """Similarity of two tokens with the same consonant skeleton; 0 when that is chance."""
    edit = OSA.normalized_similarity(a, b)
    if abjad:
        # Same skeleton, but one starts with a vowel (alef, ayn: "ahmd") and the other with a
        # consonant ("hamad"): another name.
        if _lead(a) != _lead(b):
            return 0.0
        floor = (
            ABJAD_SIMILARITY
            if len(skeleton(a)) > MIN_ABJAD_SKELETON_LEN
            else SHORT_ABJAD_SIMILARITY
        )
        return max(edit, floor)
    if a[0] == b[0] and edit >= MIN_SKELETON_EDIT_SIMILARITY:
        return max(edit, SKELETON_SIMILARITY)
    return 0.0
