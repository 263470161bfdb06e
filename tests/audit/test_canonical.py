"""The fast canonical encoding agrees with the RFC 8785 reference implementation."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from clearance.audit import entries
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


_text = st.one_of(st.none(), st.text(max_size=12))


@settings(max_examples=300, deadline=None)
@given(
    subject=st.text(min_size=1, max_size=12),
    model=_text,
    rules=st.lists(st.text(max_size=8), max_size=3),
    versions=st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3),
    country=_text,
    stream=st.one_of(st.none(), st.booleans()),
    status=st.one_of(st.none(), st.integers(100, 599)),
)
def test_the_cached_access_encoder_writes_the_reference_bytes(
    subject: str,
    model: str | None,
    rules: list[str],
    versions: dict[str, str],
    country: str | None,
    stream: bool | None,
    status: int | None,
) -> None:
    """The gateway's cached encoder (a prefix per decision, the time per request) writes exactly
    what `access_decision` writes, on a cache miss and on a hit, whatever the strings hold."""
    fields: dict[str, object] = dict(
        subject=subject,
        key_id="k1",
        surface="openai",
        endpoint="/v1/chat/completions",
        stream=stream,
        model_requested=model,
        model_served=model,
        effect="allow",
        rules=tuple(rules),
        policy_hash="p" + subject,
        facts_digest=None,
        facts_version="3",
        list_versions=versions,
        action="inference",
        ip_country=country,
        outcome="forwarding",
        status=status,
        reason=model,
    )
    encoder = entries.AccessEncoder()
    for _ in range(2):  # the first builds the prefix, the second reuses it
        written = encoder.encode(**fields)  # type: ignore[arg-type]
        moment = datetime.strptime(json.loads(written)["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
        moment = moment.replace(tzinfo=UTC)
        reference = entries.access_decision(**fields, time=moment)  # type: ignore[arg-type]
        assert written == reference
