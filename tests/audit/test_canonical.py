"""The fast canonical encoding agrees with the RFC 8785 reference implementation."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from clearance.audit.entries import canonical
from clearance.errors import InvalidInput

ascii_keys = st.text(st.characters(max_codepoint=127), max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text(st.characters(blacklist_categories=["Cs"]), max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ascii_keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(ascii_keys, values, max_size=8))
def test_fast_path_equals_reference(record: dict[str, object]) -> None:
    assert canonical(record) == rfc8785.dumps(record)


def test_control_characters_and_unicode_escape_like_json_stringify() -> None:
    record = {"b": 'tab\t nl\n \x01 \u2028 \u00e9 "q" \\ /', "a": [1, True, None]}
    assert canonical(record) == rfc8785.dumps(record)


def test_floats_and_non_ascii_keys_take_the_reference_path() -> None:
    for record in ({"x": 1e26}, {"é": 1}):
        assert canonical(record) == rfc8785.dumps(record)
    # Integers beyond ±2^53 are not interoperable JSON (RFC 8785 §3.2.2.3): refused either way.
    with pytest.raises(InvalidInput):
        canonical({"big": 2**60})
    with pytest.raises(rfc8785.IntegerDomainError):
        rfc8785.dumps({"big": 2**60})
