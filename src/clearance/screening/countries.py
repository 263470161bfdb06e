"""Country names as the lists spell them -> ISO 3166-1 alpha-2 codes (pycountry's offline data).

OFAC writes "Korea, North", "Burma", "Congo, Democratic Republic of the"; the UN writes
"Democratic People's Republic of Korea", "Iran (Islamic Republic of)"; the CSL writes codes.
"""

from __future__ import annotations

import re
from functools import cache

import pycountry

# Spellings used by OFAC, BIS and the UN that pycountry's names do not cover.
_ALIASES = {
    "burma": "MM",
    "korea north": "KP",
    "north korea": "KP",
    "korea south": "KR",
    "south korea": "KR",
    "russia": "RU",
    "iran": "IR",
    "syria": "SY",
    "palestinian": "PS",
    "palestine": "PS",
    "west bank": "PS",
    "gaza": "PS",
    "congo democratic republic of the": "CD",
    "democratic republic of the congo": "CD",
    "congo republic of the": "CG",
    "republic of the congo": "CG",
    "laos": "LA",
    "vietnam": "VN",
    "venezuela": "VE",
    "bolivia": "BO",
    "tanzania": "TZ",
    "moldova": "MD",
    "turkey": "TR",
    "macau": "MO",
    "kosovo": "XK",
    "ivory coast": "CI",
    "cote divoire": "CI",
    "the gambia": "GM",
    "gambia the": "GM",
    "bahamas the": "BS",
    "soviet union": "RU",
    "ussr": "RU",
    "yugoslavia": "RS",
    "czech republic": "CZ",
    "united states": "US",
    "usa": "US",
    "uk": "GB",
    "great britain": "GB",
}


def _key(name: str) -> str:
    folded = re.sub(r"\([^)]*\)", " ", name.lower())
    return " ".join(re.sub(r"[^a-z ]+", " ", folded.replace("'", "")).split())


@cache
def _table() -> dict[str, str]:
    table: dict[str, str] = {}
    for c in pycountry.countries:
        for attr in ("name", "official_name", "common_name"):
            value = getattr(c, attr, None)
            if value:
                table[_key(value)] = c.alpha_2
        table[c.alpha_2.lower()] = c.alpha_2
        table[c.alpha_3.lower()] = c.alpha_2
    table.update(_ALIASES)
    return table


def country_code(name: str) -> str | None:
    """ISO alpha-2 for a name or code; None when it is not a country we can name surely."""
    key = _key(name)
    if not key:
        return None
    table = _table()
    if key in table:
        return table[key]
    # "Iran (Islamic Republic of)" and "Bolivia (Plurinational State of)" lose the bracket in
    # _key; "Korea, Democratic People's Republic of" reads the same either side of the comma.
    if "," in name:
        left, _, right = name.partition(",")
        swapped = _key(f"{right} {left}")
        return table.get(swapped)
    return None
