"""Structural repair never makes an invalid read look valid."""

from __future__ import annotations

from datetime import date

import pytest

from clearance.errors import MrzError
from clearance.identity.document.repair import (
    field_classes,
    forced_repairs,
    name_content,
    repair,
)
from clearance.identity.mrz import parse_mrz

TODAY = date(2026, 6, 1)
UPPER = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
LOWER = "L898902C36UTO7408122F1204159ZE184226B<<<<<10"


def test_dropped_and_doubled_fillers_are_restored_and_then_verified() -> None:
    lines, repairs = repair([UPPER, LOWER.replace("B<<<<<1", "B<<<<<<1")])
    assert lines == (UPPER, LOWER)
    assert parse_mrz(lines, today=TODAY, allow_specimen=True).document_number == "L898902C3"
    assert [(r.line, r.kind, r.unchecked) for r in repairs] == [(1, "length", False)]


@pytest.mark.parametrize("name", ["RIKSSON", "ERIKSON", "ERIKSSON<"])
def test_a_name_line_of_the_wrong_length_is_never_stretched(name: str) -> None:
    # ERIKSSON read as ERIKSON looks exactly like a dropped filler: refuse, never pad.
    upper = (
        UPPER.replace("ERIKSSON", name)[:44] if len(name) > 8 else UPPER.replace("ERIKSSON", name)
    )
    lines, _ = repair([upper, LOWER])
    assert lines[0] == upper
    with pytest.raises(MrzError):
        parse_mrz(lines, today=TODAY, allow_specimen=True)


def test_class_repairs_follow_the_layout() -> None:
    misread = UPPER.replace("ERIKSSON", "ER1KSS0N"), LOWER.replace("7408122", "74O8I22")
    lines, repairs = repair(list(misread))
    assert lines == (UPPER, LOWER)
    assert {r.unchecked for r in repairs if r.line == 0} == {True}
    assert {r.unchecked for r in repairs if r.line == 1} == {False}


def test_alphanumeric_fields_are_never_guessed() -> None:
    # The document number may hold letters and digits: an O there stays an O and fails.
    lines, _ = repair([UPPER, LOWER.replace("L898902C3", "L8989O2C3")])
    assert lines[1].startswith("L8989O2C3")
    with pytest.raises(MrzError):
        parse_mrz(lines, today=TODAY, allow_specimen=True)


@pytest.mark.parametrize("position", [0, 3, 5, 12, 15, 24, 30])
def test_a_dropped_character_in_a_checked_line_is_refused(position: int) -> None:
    lower = LOWER[:position] + LOWER[position + 1 :]
    with pytest.raises(MrzError):
        parse_mrz(repair([UPPER, lower])[0], today=TODAY, allow_specimen=True)


def test_unknown_layouts_come_back_unchanged() -> None:
    assert repair(["hello world", "x"]) == (("HELLOWORLD", "X"), ())
    assert name_content("p<uto0conn0r<<<<") == "P<UTOOCONNOR"


def test_cells_a_class_decided_are_reported_as_class_repairs() -> None:
    # The name line read within its field class (pitch.decode): the cells where the recogniser
    # ranked a digit first are the repairs `_fix_classes` would report, unchecked, and in the
    # name only from position 6 of a TD3 upper line (9303-4 §4.2.2.1: code, state, name).
    upper = "P<IRLOCONNOR<<JOHAN<<<<<<<<<<<<<<<<<<<<<<<<<"
    classes = field_classes(44, 2)[0]
    got = forced_repairs(upper, classes, 0, (2, 6))
    assert [(r.kind, r.unchecked, r.name, r.position) for r in got] == [
        ("class", True, False, 3),
        ("class", True, True, 7),
    ]
    assert got[1].note == "position 7 read as C"
    assert forced_repairs(upper, classes, 0, ()) == ()
