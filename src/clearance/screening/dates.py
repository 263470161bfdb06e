"""Dates of birth as lists print them: "10 Dec 1948", "Dec 1948", "1948", "circa 1950",
"1959 to 1962", "01 Jan 1960 to 31 Dec 1962", ISO "1948-12-10" / "1948-12" / "1948"."""

from __future__ import annotations

import re

from clearance.screening.models import BirthDate

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_DMY = re.compile(r"^(?:(\d{1,2})\s+)?([A-Za-z]{3})[a-z]*\.?\s+(\d{4})$")
_ISO = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_RANGE = re.compile(r"^(.+?)\s+(?:to|-)\s+(.+)$")
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")


def parse_birth_date(text: str) -> BirthDate | None:
    """One date or range; None when nothing recognisable is there (never a guess)."""
    value = text.strip().strip(".").strip()
    value = re.sub(r"^(?:circa|approximately|approx\.?|about|ca\.?)\s+", "", value, flags=re.I)
    if not value:
        return None
    single = _single(value)
    if single is not None:
        return single
    rng = _RANGE.match(value)
    if rng:
        start, end = _single(rng.group(1)), _single(rng.group(2))
        if start is not None and end is not None and start.year_from <= end.year_to:
            return BirthDate(start.year_from, end.year_to)
    return None


def _single(value: str) -> BirthDate | None:
    iso = _ISO.match(value)
    if iso:
        year = int(iso.group(1))
        month = int(iso.group(2)) if iso.group(2) else None
        day = int(iso.group(3)) if iso.group(3) else None
        return _checked(year, month, day)
    dmy = _DMY.match(value)
    if dmy:
        month = _MONTHS.get(dmy.group(2).lower())
        if month is None:
            return None
        day = int(dmy.group(1)) if dmy.group(1) else None
        return _checked(int(dmy.group(3)), month, day)
    return None


def _checked(year: int, month: int | None, day: int | None) -> BirthDate | None:
    if not 1800 <= year <= 2100:
        return None
    if month is not None and not 1 <= month <= 12:
        return None
    if day is not None and not 1 <= day <= 31:
        return None
    return BirthDate(year, year, month, day)


def years_in(text: str) -> BirthDate | None:
    """Fallback for free text such as UN notes: the span of the four-digit years it names."""
    years = [int(y) for y in _YEAR.findall(text)]
    return BirthDate(min(years), max(years)) if years else None
