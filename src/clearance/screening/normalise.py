"""Names -> comparable tokens: transliteration to ASCII, case, accents, punctuation, name order,
legal forms, honorifics and particles. Pure functions; the same code runs on listed names and
on queries, so both sides land in the same form.

Transliteration to ASCII, per script, is `romanise.py`'s (ICU transforms, Hangul by
`hangul.py`); a name may have more than one reading, and queries try each.
"""

from __future__ import annotations

from functools import lru_cache

from clearance.screening.romanise import ABJAD, readings, to_ascii

__all__ = ["natural_order", "skeleton", "to_ascii", "token_readings", "tokens"]

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


def natural_order(name: str) -> str:
    """OFAC and UN print people as "SURNAME, Given Names"; turn that into "Given Names SURNAME".
    Only one comma means name order; more (or none) are left alone."""
    if name.count(",") != 1:
        return name
    surname, given = (part.strip() for part in name.split(","))
    return f"{given} {surname}" if surname and given else name


def tokens(name: str) -> tuple[str, ...]:
    """The distinctive tokens of a name, in natural order: its first reading. Legal forms,
    honorifics and particles are dropped, unless nothing else would be left (a company called
    "Limited Co" stays)."""
    return token_readings(name)[0]


@lru_cache(maxsize=65_536)
def token_readings(name: str) -> tuple[tuple[str, ...], ...]:
    """The tokens of each reading of a name (`romanise.readings`): a Korean name in the DPRK,
    McCune-Reischauer and Revised Romanization spellings, a Chinese one with its given name
    joined and apart, kana with and without long vowels. Distinct; the first is `tokens`."""
    abjad = is_abjad(name)
    out = []
    for reading in readings(natural_order(name)):
        words = reading.split()
        if abjad:
            # Arabic writes the article joined to its noun: "التكريتي" -> "altkryty", listed
            # as "AL-TIKRITI" (whose "al" is dropped as a particle).
            words = [w[2:] if w.startswith("al") and len(w) >= 5 else w for w in words]
        kept = tuple(w for w in words if w not in _DROP)
        out.append(kept if kept else tuple(words))
    return tuple(dict.fromkeys(out))


def is_abjad(text: str) -> bool:
    """Written (partly) in a script that leaves short vowels out: Arabic, Hebrew, Syriac..."""
    return bool(ABJAD.search(text))


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
