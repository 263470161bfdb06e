"""ISO 3166-1 alpha-2 country codes, validated against pycountry's offline data."""

from __future__ import annotations

from collections.abc import Iterable

import pycountry

from clearance.errors import InvalidInput

ALPHA2: frozenset[str] = frozenset(c.alpha_2 for c in pycountry.countries)


def country(code: str) -> str:
    value = code.strip().upper()
    if value not in ALPHA2:
        raise InvalidInput(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return value


def countries(codes: Iterable[str]) -> tuple[str, ...]:
    """Validated, de-duplicated, sorted: the canonical form stored and hashed."""
    return tuple(sorted({country(c) for c in codes}))
