"""The ICAO 9303-3 §5 code table and its ISO 3166-1 alpha-2 mapping."""

from __future__ import annotations

import pytest

from clearance.errors import UnknownCountryCode
from clearance.identity.mrz import CODES, CodeKind, lookup


@pytest.mark.parametrize(
    ("field", "alpha2", "kind"),
    [
        ("D<<", "DE", CodeKind.STATE),
        ("DEU", "DE", CodeKind.STATE),
        ("USA", "US", CodeKind.STATE),
        ("GBR", "GB", CodeKind.STATE),
        ("GBD", None, CodeKind.BRITISH_CLASS),
        ("GBN", None, CodeKind.BRITISH_CLASS),
        ("GBO", None, CodeKind.BRITISH_CLASS),
        ("GBP", None, CodeKind.BRITISH_CLASS),
        ("GBS", None, CodeKind.BRITISH_CLASS),
        ("RKS", None, CodeKind.TERRITORY),
        ("EUE", None, CodeKind.ORGANISATION),
        ("UNO", None, CodeKind.ORGANISATION),
        ("UNA", None, CodeKind.ORGANISATION),
        ("UNK", None, CodeKind.ORGANISATION),
        ("XPO", None, CodeKind.ORGANISATION),
        ("XOM", None, CodeKind.ORGANISATION),
        ("XXA", None, CodeKind.NO_NATIONALITY),
        ("XXB", None, CodeKind.NO_NATIONALITY),
        ("XXC", None, CodeKind.NO_NATIONALITY),
        ("XXX", None, CodeKind.NO_NATIONALITY),
        ("ANT", None, CodeKind.DEPRECATED),
        ("NTZ", None, CodeKind.DEPRECATED),
        ("UTO", None, CodeKind.SPECIMEN),
        ("IAO", None, CodeKind.ORGANISATION),
    ],
)
def test_code_table(field: str, alpha2: str | None, kind: CodeKind) -> None:
    code = lookup(field, role="nationality")
    assert (code.alpha2, code.kind) == (alpha2, kind)


def test_every_iso_state_maps_to_its_alpha2() -> None:
    states = [c for c in CODES.values() if c.kind is CodeKind.STATE]
    assert len(states) >= 249
    assert all(c.alpha2 is not None and len(c.alpha2) == 2 for c in states)
    assert all(c.alpha2 is None for c in CODES.values() if c.kind is not CodeKind.STATE)


@pytest.mark.parametrize("field", ["<<<", "D<", "DE<", "YTO", "G<R", "ZZZ"])
def test_unknown_codes_are_refused_naming_the_role(field: str) -> None:
    with pytest.raises(UnknownCountryCode, match="issuing_state"):
        lookup(field, role="issuing_state")
