"""Does the name read from an MRZ agree with the name the user declared?

No check digit covers a name (ICAO 9303-3 §4.9), so a read that passes every check digit can
still be wrong ("LINDQVIST" read as "INDQVIST", DESIGN.md). The declared name is written the way
the MRZ writes names (9303-3 §4.6: upper case, apostrophes dropped, hyphens and spaces become
fillers) with every transliteration 9303-3 §6.A allows ("Ü" may be UE, UXX or U), and every
component the MRZ shows must be one of the declared components. Only a name the MRZ marks as
possibly truncated (its last position is a letter, 9303-4 §4.2.3) may end in a prefix.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

# 9303-3 §6.A: characters with more than one recommended form, or none by decomposition.
_ALTERNATIVES: dict[str, tuple[str, ...]] = {
    "Ä": ("AE", "A"),
    "Å": ("AA", "A"),
    "Ö": ("OE", "O"),
    "Ü": ("UE", "UXX", "U"),
    "Ñ": ("N", "NXX"),
    "Æ": ("AE",),
    "Ø": ("OE",),
    "Œ": ("OE",),
    "Þ": ("TH",),
    "Ð": ("D",),
    "Đ": ("D",),
    "Ħ": ("H",),
    "Ĳ": ("IJ",),
    "Ł": ("L",),
    "Ŀ": ("L",),
    "Ŋ": ("N",),
    "ß": ("SS",),
    "ẞ": ("SS",),
    "İ": ("I",),
}
_MAX_VARIANTS = 64  # a name with many umlauts does not explode


def _plain(char: str) -> str:
    """Latin letter without its diacritics (9303-3 §6.A: Á -> A, Č -> C ...)."""
    decomposed = unicodedata.normalize("NFKD", char)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _variants(token: str) -> set[str]:
    out = {""}
    for char in token.upper():
        options = _ALTERNATIVES.get(char, (_plain(char),))
        out = {prefix + option for prefix in out for option in options}
        if len(out) > _MAX_VARIANTS:
            out = set(sorted(out)[:_MAX_VARIANTS])
    return {v for v in out if re.fullmatch(r"[A-Z]+", v)}


def declared_components(name: str) -> set[str]:
    """Every MRZ spelling of every component of a declared name."""
    text = re.sub("['`.\u2019]", "", name)  # 9303-3 §4.6: apostrophes are omitted
    out: set[str] = set()
    for part in re.split(r"[\s,\-]+", text):
        if part:
            out |= _variants(part)
    return out


def mrz_components(primary: str, secondary: str) -> list[str]:
    return [part for part in f"{primary} {secondary}".split() if part]


def name_agrees(declared: str, primary: str, secondary: str, *, truncated: bool) -> bool:
    known = declared_components(declared)
    shown = mrz_components(primary, secondary)
    if not primary.strip() or not shown:
        return False
    for i, component in enumerate(shown):
        if component in known:
            continue
        last = i == len(shown) - 1
        if last and truncated and any(k.startswith(component) for k in known):
            continue
        return False
    return True


def _letters(text: str) -> set[str]:
    """Every MRZ spelling of a run of VIZ words, the words joined: the recogniser often drops
    the space between two words, so words are compared joined, never split."""
    return _variants(re.sub(r"[^\w]|[\d_]", "", text))


def _word_runs(line: str) -> list[str]:
    """Every run of consecutive words of a VIZ line (9303-3 §3.4: a hyphen or space within a
    name, a comma between its two parts when they share a field)."""
    words = [w for w in re.split(r"[\s,/\-'`.\u2019]+", line) if w]
    return ["".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)]


def visual_zone_shows(
    lines: Iterable[str], primary: str, secondary: str, *, truncated: bool
) -> bool:
    """Both parts of the MRZ name appear in the visual zone, each as whole words of one VIZ line.

    9303-3 §3.1 and §3.4: the VIZ prints the primary and secondary identifiers in Latin letters
    (diacritics allowed, transliterated in the MRZ per §6.A; a transliteration is given beside
    a non-Latin name). A part the MRZ marks as possibly truncated (9303-4 §4.2.3) may be the
    start of the VIZ's words. The caption and other text on the page is harmless: only the MRZ
    name must be found."""
    runs = [_letters(run) for line in lines for run in _word_runs(line)]
    parts = [p for p in (primary, secondary) if p.strip()]
    if not primary.strip():
        return False
    for index, part in enumerate(parts):
        wanted = part.replace(" ", "")
        prefix_ok = truncated and index == len(parts) - 1
        if not any(
            wanted in spellings or (prefix_ok and any(s.startswith(wanted) for s in spellings))
            for spellings in runs
        ):
            return False
    return True
