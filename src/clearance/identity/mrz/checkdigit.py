"""The MRZ check digit: ICAO Doc 9303-3 §4.9."""

from __future__ import annotations

_WEIGHTS = (7, 3, 1)  # 9303-3 §4.9: "continuously repetitive weighting of 731 731 ..."


def char_value(char: str) -> int:
    """9303-3 §4.9: digits are themselves, A-Z are 10-35, the filler `<` is 0."""
    if "0" <= char <= "9":
        return ord(char) - ord("0")
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    if char == "<":
        return 0
    raise ValueError(f"{char!r} is not an MRZ character")


def check_digit(data: str) -> str:
    """Steps 1-4 of 9303-3 §4.9: weighted sum modulo 10, as one digit character."""
    total = sum(char_value(c) * _WEIGHTS[i % 3] for i, c in enumerate(data))
    return str(total % 10)
