"""Korean names in Hangul -> the Latin spellings lists use. Pure functions over tables.

A syllable block is decomposed arithmetically (Unicode 15, section 3.12, "Conjoining Jamo
Behavior": S = 0xAC00 + (L * 21 + V) * 28 + T). Each block is then spelled three ways, because
lists mix them:

- DPRK: McCune-Reischauer without breves or apostrophes, with j for the plain affricate and
  kh/th/ph for the aspirates, as the UN and OFAC write North Korean names ("KIM Jong Un",
  "JANG Song Thaek", "RI Pyong Chol");
- MR: classic McCune-Reischauer, breves and apostrophes dropped (older OFAC entries:
  "MUN, Cho'ng-Ch'o'l" -> "mun chong chol");
- RR: the Revised Romanization of Korean (Ministry of Culture and Tourism notice 2000-8), as
  South Koreans write their names ("Jeong-eun"), with the surname as conventionally spelled
  in passports (Lee, Park, Choi).

Korean writes the family name first and names have no spaces: the first block (or a known
two-block surname) is the family name, each given-name block is its own token, which is how the
lists space them ("Jong Un"); a joined given name ("Jongun") is reached by the matcher's
compound step.
"""

from __future__ import annotations

import re

_S_BASE, _S_END = 0xAC00, 0xD7A3
_V_COUNT, _T_COUNT = 21, 28

# Initial consonants, in Unicode order (g kk n d tt r m b pp s ss - j jj ch k t p h).
_INITIAL = {
    "dprk": "k kk n t tt r m p pp s ss - j jj ch kh th ph h",
    "mr": "k kk n t tt r m p pp s ss - ch tch ch k t p h",
    "rr": "g kk n d tt r m b pp s ss - j jj ch k t p h",
}
# Vowels, in Unicode order (a ae ya yae eo e yeo ye o wa wae oe yo u wo we wi yu eu ui i).
_VOWEL = {
    "dprk": "a ae ya yae o e yo ye o wa wae oe yo u wo we wi yu u ui i",
    "mr": "a ae ya yae o e yo ye o wa wae oe yo u wo we wi yu u ui i",
    "rr": "a ae ya yae eo e yeo ye o wa wae oe yo u wo we wi yu eu ui i",
}
# Final consonants (none, then g kk gs n nj nh d l lg lm lb ls lt lp lh m b bs s ss ng j ch k t
# p h), as they sound at the end of a syllable.
_FINAL = "- k k k n n n t l k m l l l p l m p p t t ng t t k t p t"
# Surnames whose conventional spelling is not the syllable's: DPRK keeps the initial r
# (South 이 "Lee" is North 리 "Ri"), MR and RR follow passport usage.
_SURNAMES = {
    "dprk": {
        "이": "ri",
        "리": "ri",
        "임": "rim",
        "림": "rim",
        "유": "ryu",
        "류": "ryu",
        "노": "ro",
    },
    "mr": {"이": "yi", "리": "ri", "박": "pak", "최": "choe", "오": "o", "임": "im", "유": "yu"},
    "rr": {
        "김": "kim",  # RR would give "gim"; passports keep Kim
        "이": "lee",
        "리": "lee",
        "박": "park",
        "최": "choi",
        "정": "jung",
        "조": "cho",
        "강": "kang",
        "윤": "yoon",
        "임": "lim",
        "림": "lim",
        "오": "oh",
        "신": "shin",
        "안": "ahn",
        "유": "yoo",
        "류": "ryu",
        "노": "noh",
        "고": "ko",
        "구": "koo",
        "문": "moon",
        "성": "sung",
        "주": "joo",
        "우": "woo",
        "전": "jeon",
        "현": "hyun",
        "변": "byun",
        "배": "bae",
        "백": "baek",
        "허": "heo",
        "권": "kwon",
        "곽": "kwak",
    },
}
# Two-block family names (the rest are one block).
_DOUBLE_SURNAMES = frozenset("남궁 황보 제갈 선우 독고 사공 서문 동방 어금 망절".split())
SCHEMES = ("dprk", "mr", "rr")
_HANGUL_WORD = re.compile("[\uac00-\ud7a3]+")


def has_hangul(text: str) -> bool:
    return _HANGUL_WORD.search(text) is not None


def syllable(block: str, scheme: str) -> str:
    """One Hangul block in one scheme: "정" -> "jong" (DPRK), "chong" (MR), "jeong" (RR)."""
    index = ord(block) - _S_BASE
    lead, rest = divmod(index, _V_COUNT * _T_COUNT)
    vowel, tail = divmod(rest, _T_COUNT)
    initial = _INITIAL[scheme].split()[lead]
    return (
        ("" if initial == "-" else initial)
        + _VOWEL[scheme].split()[vowel]
        + ("" if tail == 0 else _FINAL.split()[tail])
    )


def readings(text: str) -> tuple[str, ...]:
    """The name spelled in each scheme (DPRK first): "김정은" -> ("kim jong un", "kim chong un",
    "kim jeong eun"). Text outside Hangul words is kept as it is."""
    words = _HANGUL_WORD.findall(text)
    # "김 정은": the family name written apart from the given name.
    apart = len(words) >= 2 and (len(words[0]) == 1 or words[0] in _DOUBLE_SURNAMES)
    out = []
    for scheme in SCHEMES:
        seen = 0

        def spell(match: re.Match[str], scheme: str = scheme) -> str:
            nonlocal seen
            seen += 1
            word = match.group()
            if apart and seen == 1:
                return _family(word, scheme)
            if apart or not 2 <= len(word) <= 4:
                return " ".join(syllable(b, scheme) for b in word)
            cut = 2 if word[:2] in _DOUBLE_SURNAMES else 1
            return " ".join(
                [_family(word[:cut], scheme), *(syllable(b, scheme) for b in word[cut:])]
            )

        out.append(_HANGUL_WORD.sub(spell, text))
    return tuple(out)


def _family(block: str, scheme: str) -> str:
    return _SURNAMES[scheme].get(block) or "".join(syllable(b, scheme) for b in block)
