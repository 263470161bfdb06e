"""Structural repair of an OCR'd MRZ, which never guesses.

Two repairs only, each deterministic (one candidate, never a search for a variant that happens
to pass the check digits — that would turn the check digits into a guessing oracle):

1. Length: a line covered by check digits that is a few characters short or long gets its
   longest run of fillers stretched or shrunk to the layout's width (OCR drops and doubles `<`
   in long runs); the check digits then verify every position. A name line is never changed
   in length: nothing tells a dropped filler from a dropped letter — measured here, the
   recogniser collapses doubled letters (ANNA read as ANA) consistently across reads — so a
   name line of the wrong length stays wrong and is refused.
2. Character class: where the layout allows only digits (dates, check digits; 9303-4 §4.2.2.2,
   9303-5 §4.2.2.2) a letter that OCR commonly confuses with a digit is read as that digit;
   where it allows only letters (codes, sex, names: 9303-3 §4.6 forbids digits in names) a digit
   is read as the confusable letter.

Everything is then parsed by `mrz.parse_mrz`, so a repaired read still passes every check digit
or is refused. Names and nationality carry no check digit: repairs there are reported, so the
decision can send the case to review instead of trusting it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TO_DIGIT = {
    "O": "0",
    "Q": "0",
    "D": "0",
    "I": "1",
    "L": "1",
    "Z": "2",
    "S": "5",
    "G": "6",
    "B": "8",
}
_TO_LETTER = {"0": "O", "1": "I", "2": "Z", "5": "S", "6": "G", "8": "B"}
MAX_LENGTH_REPAIR = 4


@dataclass(frozen=True, slots=True)
class Repair:
    line: int
    kind: str  # "length" or "class"
    unchecked: bool  # touches a field no check digit covers (name, codes, sex)
    note: str
    name: bool = False  # in the name field itself, which the visual zone can confirm
    position: int = 0  # 1-based position in the line of a class repair


def field_classes(width: int, count: int) -> tuple[str, ...]:
    """Per line, per position: D digit (or `<`), A letter (or `<`), X anything."""
    if count == 3:  # TD1, 9303-5 §4.2.2
        return ("A" * 5 + "X" * 25, "D" * 7 + "A" + "D" * 7 + "AAA" + "X" * 11 + "D", "A" * 30)
    lower = "X" * 9 + "D" + "AAA" + "D" * 7 + "A" + "D" * 7
    if width == 44:  # TD3 (9303-4 §4.2.2.2) or MRV-A: TD3 ends with two check digits
        lower += "X" * 14 + "DD"
    else:  # TD2 or MRV-B
        lower += "X" * 7 + "D"
    return ("A" * width, lower)


def layout(lines: list[str]) -> tuple[int, int] | None:
    """(line width, line count) the OCR'd lines most plausibly have, or None."""
    if not lines:
        return None
    mean = sum(len(line) for line in lines) / len(lines)
    if len(lines) == 3 and abs(mean - 30) <= MAX_LENGTH_REPAIR:
        return 30, 3
    if len(lines) == 2:
        for width in (44, 36):
            if abs(mean - width) <= MAX_LENGTH_REPAIR:
                return width, 2
    return None


def name_line(width: int, index: int) -> bool:
    """The line that holds the name and no check digit: TD1's lower, the others' upper."""
    return index == (2 if width == 30 else 0)


def _fix_length(line: str, width: int, index: int) -> tuple[str, list[Repair]]:
    delta = width - len(line)
    if delta == 0 or abs(delta) > MAX_LENGTH_REPAIR or name_line(width, index):
        return line, []
    runs = list(re.finditer(r"<+", line))
    if not runs:
        return line, []
    run = max(runs, key=lambda m: (len(m.group()), m.start()))  # longest, the last on a tie
    new_length = len(run.group()) + delta
    if new_length < 1:
        return line, []
    fixed = line[: run.start()] + "<" * new_length + line[run.end() :]
    return fixed, [Repair(index, "length", False, f"filler run changed by {delta:+d}")]


def name_field(width: int, index: int, position: int) -> bool:
    """The 0-based position is in the name: all of TD1's lower line (9303-5 §4.2.2), from the
    sixth character of the others' upper line (9303-4 §4.2.2.1: code, issuing state, name)."""
    return name_line(width, index) and (width == 30 or position >= 5)


def code_field(width: int, index: int, position: int) -> str | None:
    """ "issuing_state" or "nationality" when the 1-based position is in that code (9303-4
    §4.2.2, 9303-5 §4.2.2, 9303-6: the state at 3-5 of the upper line; the nationality at 11-13
    of TD3/TD2's lower line, 16-18 of TD1's middle line), else None."""
    if index == 0 and 3 <= position <= 5:
        return "issuing_state"
    if width == 30 and index == 1 and 16 <= position <= 18:
        return "nationality"
    if width != 30 and index == 1 and 11 <= position <= 13:
        return "nationality"
    return None


def _fix_classes(line: str, classes: str, index: int) -> tuple[str, list[Repair]]:
    chars = list(line)
    repairs: list[Repair] = []
    for i, (char, cls) in enumerate(zip(chars, classes, strict=False)):
        target = _TO_DIGIT.get(char) if cls == "D" else _TO_LETTER.get(char) if cls == "A" else None
        if target is not None:
            chars[i] = target
            note = f"position {i + 1} read as {target}"
            in_name = cls == "A" and name_field(len(line), index, i)
            repairs.append(Repair(index, "class", cls == "A", note, in_name, i + 1))
    return "".join(chars), repairs


def forced_repairs(
    text: str, classes: str, index: int, forced: tuple[int, ...]
) -> tuple[Repair, ...]:
    """The cells of line `index` a class-restricted pitch read (`pitch.decode`) took from the
    field's class against the recogniser's first choice, as the class repairs they stand for:
    the same record (and the same cross-check by the decision) as when `_fix_classes` reads a
    digit as the confusable letter; here the letter is the one the recogniser ranked first
    among the characters the field allows."""
    width = len(text)
    return tuple(
        Repair(
            index,
            "class",
            classes[i] == "A",
            f"position {i + 1} read as {text[i]}",
            classes[i] == "A" and name_field(width, index, i),
            i + 1,
        )
        for i in sorted(forced)
    )


def name_content(text: str) -> str:
    """A name line's letters as repair would read them, trailing fillers dropped: two reads of
    one name line are compared on this, since no check digit covers a name."""
    return "".join(_TO_LETTER.get(c, c) for c in normalise(text)).rstrip("<")


def normalise(text: str) -> str:
    """OCR output to MRZ characters: case, spaces and the guillemet OCR sees in `<<`."""
    return re.sub(r"\s+", "", text.upper().replace("\u00ab", "<<").replace("\u2039", "<"))


def repair(raw: list[str]) -> tuple[tuple[str, ...], tuple[Repair, ...]]:
    """The repaired lines and what was changed; lines of an unknown layout come back as read."""
    lines = [normalise(line) for line in raw]
    shape = layout(lines)
    if shape is None:
        return tuple(lines), ()
    width, count = shape
    repairs: list[Repair] = []
    out: list[str] = []
    for index, (line, classes) in enumerate(zip(lines, field_classes(width, count), strict=True)):
        line, length_repairs = _fix_length(line, width, index)
        line, class_repairs = (
            _fix_classes(line, classes, index) if len(line) == width else (line, [])
        )
        repairs += length_repairs + class_repairs
        out.append(line)
    return tuple(out), tuple(repairs)
