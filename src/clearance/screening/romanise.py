"""Any script -> lower-case ASCII, in the spellings sanctions lists use. Pure functions.

Transliteration is ICU's (CLDR transforms, https://unicode.org/reports/tr35/tr35-general.html
#Transforms), offline: Cyrillic by `Russian-Latin/BGN` (BGN/PCGN 1947, which OFAC's romanised
Russian names follow); Arabic and Persian by `Arabic-Latin`; kana by `Katakana-Latin` /
`Hiragana-Latin` (Hepburn); Han by `Han-Latin` (Hanyu Pinyin, Mandarin readings); then
`Latin-ASCII` folds accents and tone marks ("Ø" -> "O", "Xí Jìnpíng" -> "Xi Jinping"). Hangul
goes through `hangul.py` instead: ICU gives the Revised Romanization only, lists mostly
McCune-Reischauer.

Some scripts have more than one plausible Latin form; `readings` returns them all, the one
listed names are indexed by first.
"""

from __future__ import annotations

import re
import unicodedata

import icu  # PyICU ships no type information (ignored in pyproject.toml)

from clearance.screening import hangul

_TRANSFORM = "Russian-Latin/BGN; Any-Latin; Latin-ASCII"
_translit = icu.Transliterator.createInstance(_TRANSFORM)

# Apostrophes and BGN/PCGN's separator dot join, they do not split: "GAMA'AT", "Kupriy·anov".
_APOSTROPHES = re.compile("['`\u2018\u2019\u02bb\u02bc\u02be\u02bf\u00b4\u00b7]")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
# Scripts that write few or no short vowels (Unicode blocks Hebrew through Arabic Extended-A).
ABJAD = re.compile(r"[\u0590-\u08ff]")
_HAN = re.compile(r"^[\u3400-\u9fff\uf900-\ufaff]{2,4}$")
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
# Chinese two-character surnames (复姓); every other surname is one character.
_DOUBLE_SURNAMES = frozenset(
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 令狐 司徒 夏侯 长孙 宇文 轩辕".split()
)
# Ta marbuta is pronounced -a/-ah at the end of a name ("فاطمة" Fatima), not ICU's "t".
_ARABIC_BEFORE = str.maketrans({"\u0629": "\u0627"})
# Words ICU spells by their letters that lists spell by sound (the article and the
# connectives of a nasab chain, ICAO Doc 9303 part 3 and BGN/PCGN 1956 Arabic): "abw" is Abu.
_ARABIC_WORDS = {"abw": "abu", "abn": "ibn", "bn": "bin", "bnt": "bint", "bd": "abd"}
# Pinyin with tone numbers: "Xi2 Jin4ping2".
_TONE_DIGITS = re.compile(r"^(?:[a-z]{2,6}[1-5])+[a-z]{0,6}$")
# Hepburn as lists write it drops the long-vowel marks: kana "shoukou", "yuuko" -> "shoko",
# "yuko" (ICU already turns the prolonged sound mark into a macron that Latin-ASCII drops).
_LONG_VOWELS = (("ou", "o"), ("uu", "u"), ("oo", "o"))


def readings(text: str) -> tuple[str, ...]:
    """`text` as lower-case ASCII letters, digits and spaces, once per plausible reading; the
    first is the one listed names are indexed by. Distinct, never empty."""
    text = unicodedata.normalize("NFKC", text)
    if text.isascii():
        forms = [_pinyin_tones(text)]
    elif hangul.has_hangul(text):
        forms = [str(_translit.transliterate(r)) for r in hangul.readings(text)]
    elif _KANA.search(text):
        plain = str(_translit.transliterate(text))
        forms = [_fold_long_vowels(plain), plain]
    elif (han := _han_name(text)) is not None:
        forms = list(han)
    elif ABJAD.search(text):
        forms = [_arabic(text)]
    else:
        forms = [str(_translit.transliterate(text))]
    return tuple(dict.fromkeys(_clean(f) for f in forms))


def to_ascii(text: str) -> str:
    """Any script to lower-case ASCII letters, digits and spaces (the first reading)."""
    return readings(text)[0]


def _clean(text: str) -> str:
    text = _APOSTROPHES.sub("", text.lower())
    return " ".join(_NON_ALNUM.sub(" ", text).split())


def _han_name(text: str) -> tuple[str, str] | None:
    """A Chinese personal name written without spaces: ICU gives one syllable per character,
    romanised listings write surname + joined given name ("习近平" -> "xi jinping"), some the
    given name's syllables apart ("WANG, Guo Ying")."""
    stripped = text.strip()
    if not _HAN.match(stripped):
        return None
    cut = 2 if stripped[:2] in _DOUBLE_SURNAMES and len(stripped) > 2 else 1
    family = "".join(str(_translit.transliterate(stripped[:cut])).split())
    given = str(_translit.transliterate(stripped[cut:])).split()
    if not given:
        return None
    return f"{family} {''.join(given)}", f"{family} {' '.join(given)}"


def _arabic(text: str) -> str:
    """Arabic-Latin, then a word-initial ayn or hamza (which ICU writes as a modifier letter)
    read as the vowel it carries: "عمر" -> "amr", as lists write Omar."""
    words = str(_translit.transliterate(text.translate(_ARABIC_BEFORE))).split()
    words = ["a" + w[1:] if w[0] in "\u02bf\u02be" else w for w in words]
    return " ".join(_ARABIC_WORDS.get(_clean(w), w) for w in words)


def _pinyin_tones(text: str) -> str:
    words = text.split()
    if not any(_TONE_DIGITS.match(w.lower()) for w in words):
        return text
    return " ".join(re.sub("[1-5]", "", w) if _TONE_DIGITS.match(w.lower()) else w for w in words)


def _fold_long_vowels(text: str) -> str:
    for long, short in _LONG_VOWELS:
        text = text.replace(long, short)
    return text
