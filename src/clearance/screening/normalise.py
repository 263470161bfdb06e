"""Names -> comparable tokens: transliteration to ASCII, case, accents, punctuation, name order,
legal forms, honorifics and particles. Pure functions; the same code runs on listed names and
on queries, so both sides land in the same form.

Transliteration is ICU's (CLDR transforms, https://unicode.org/reports/tr35/tr35-general.html
#Transforms): Cyrillic by BGN/PCGN, which is what OFAC's romanised Russian names follow; every
other script by `Any-Latin`; then `Latin-ASCII` folds accents ("Ø" -> "O", "ß" -> "ss").
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import icu  # type: ignore[import-untyped]  # PyICU ships no type information

_TRANSFORM = "Russian-Latin/BGN; Any-Latin; Latin-ASCII"
_translit = icu.Transliterator.createInstance(_TRANSFORM)

# Company legal forms: they say what kind of company, not which one ("LLC", "CORP" alone must
# never make a match). Cyrillic forms arrive already transliterated (Cyrillic OOO -> "ooo").
LEGAL_FORMS = frozenset(
    """
    llc ltd limited co corp corporation inc incorporated company companies plc llp lp gmbh ag
    sa sas sarl srl spa sl bv nv ab as asa oy oyj aps kg kft zrt doo dd ad jsc ojsc pjsc cjsc
    ooo zao oao pao tov pat fze fzc fzco fzllc dmcc bhd sdn pte pvt pty ltda cia eirl sac
    saic ltdsti sti sh jv establishment est
    """.split()
)
# Titles and honorifics: they describe a person, they do not name one.
HONORIFICS = frozenset(
    """
    mr mrs ms miss dr prof sir lord dame sheikh shaykh sheik shaikh haji hajji hajj mullah mulla
    maulana mawlana mawlawi maulvi imam sayyid sayed syed general gen col colonel major maj
    captain capt lt lieutenant brig brigadier admiral adm eng engineer his her excellency he
    """.split()
)
# Particles and connectives: spelled, joined or dropped inconsistently across lists.
PARTICLES = frozenset(
    """
    al el ul bin ben ibn bint de da del della der des di du dos la le van von y e the of and
    """.split()
)
_DROP = LEGAL_FORMS | HONORIFICS | PARTICLES

# Apostrophes and BGN/PCGN's separator dot join, they do not split: "GAMA'AT", "Kupriy·anov".
_APOSTROPHES = re.compile("['`\u2018\u2019\u02bb\u02bc\u02be\u02bf\u00b4\u00b7]")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
# Scripts that write few or no short vowels (Unicode blocks Hebrew through Arabic Extended-A).
_ABJAD = re.compile(r"[\u0590-\u08ff]")
_HAN = re.compile(r"^[\u3400-\u9fff\uf900-\ufaff]{2,4}$")


def to_ascii(text: str) -> str:
    """Any script to lower-case ASCII letters, digits and spaces."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        text = _han_name(text) or str(_translit.transliterate(text))
    text = _APOSTROPHES.sub("", text.lower())
    return " ".join(_NON_ALNUM.sub(" ", text).split())


def _han_name(text: str) -> str | None:
    """A Chinese personal name written without spaces: ICU gives one syllable per character,
    but romanised listings write surname + joined given name ("习近平" -> "xi jinping")."""
    stripped = text.strip()
    if not _HAN.match(stripped):
        return None
    syllables = str(_translit.transliterate(stripped)).split()
    if len(syllables) < 2:
        return None
    return f"{syllables[0]} {''.join(syllables[1:])}"


def natural_order(name: str) -> str:
    """OFAC and UN print people as "SURNAME, Given Names"; turn that into "Given Names SURNAME".
    Only one comma means name order; more (or none) are left alone."""
    if name.count(",") != 1:
        return name
    surname, given = (part.strip() for part in name.split(","))
    return f"{given} {surname}" if surname and given else name


@lru_cache(maxsize=65_536)
def tokens(name: str) -> tuple[str, ...]:
    """The distinctive tokens of a name, in natural order. Legal forms, honorifics and particles
    are dropped, unless nothing else would be left (a company called "Limited Co" stays)."""
    words = to_ascii(natural_order(name)).split()
    if is_abjad(name):
        # Arabic writes the article joined to its noun: "التكريتي" -> "altkryty", listed as
        # "AL-TIKRITI" (whose "al" is dropped as a particle).
        words = [w[2:] if w.startswith("al") and len(w) >= 5 else w for w in words]
    kept = tuple(w for w in words if w not in _DROP)
    return kept if kept else tuple(words)


def is_abjad(text: str) -> bool:
    """Written (partly) in a script that leaves short vowels out: Arabic, Hebrew, Syriac..."""
    return bool(_ABJAD.search(text))


def skeleton(token: str) -> str:
    """Consonant skeleton: Arabic and Hebrew write few vowels, so "mhmd" (محمد) and "muhammad"
    differ only in vowels. Vowels and the semivowels y/w are dropped, q/c fold into k, and
    doubled letters collapse."""
    out: list[str] = []
    for ch in token:
        if ch in "aeiouyw":
            continue
        ch = "k" if ch in "qc" else ch
        if not out or out[-1] != ch:
            out.append(ch)
    return "".join(out)
