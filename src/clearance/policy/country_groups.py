"""EAR country groups (15 CFR Part 740, Supplement No. 1) as data: country_groups.toml."""

from __future__ import annotations

import functools
import tomllib
from importlib import resources

_DOC = tomllib.loads(
    resources.files("clearance.policy").joinpath("country_groups.toml").read_text()
)
GROUPS: dict[str, frozenset[str]] = {g: frozenset(m) for g, m in _DOC["groups"].items()}
CITATION: str = _DOC["citation"]


@functools.cache
def of(country: str) -> list[str]:
    """The groups a country is in, sorted ("" -> none)."""
    return sorted(g for g, members in GROUPS.items() if country and country in members)
