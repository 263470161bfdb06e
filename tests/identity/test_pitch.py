"""The fixed-pitch reader on hand-made CTC outputs (ICAO 9303-3 §4.4: one cell per character)."""

from __future__ import annotations

import numpy as np
import pytest

from clearance.identity.document.pitch import MRZ_ALPHABET, columns, decode

# A vocabulary like the recogniser's: the blank first, lower-case and full-width forms, a
# guillemet for fillers, and a character outside the MRZ set.
VOCABULARY = ["blank", *MRZ_ALPHABET, "a", "n", "\uff2e", "\u00ab", "\u7597"]
SLOTS = columns(VOCABULARY)


def frames(line: str, weak: tuple[int, ...] = (), pitch: int = 4, lead: int = 3) -> np.ndarray:  # type: ignore[type-arg]
    """One spike frame per cell, blanks between; in the `weak` cells the blank wins on every
    frame (the greedy read drops that character) though the character is still the likeliest
    non-blank output there."""
    out = np.full((lead + pitch * len(line) + 2, len(VOCABULARY)), 0.001, dtype=np.float32)
    out[:, 0] = 0.9
    for i, char in enumerate(line):
        row = lead + pitch * i
        out[row, VOCABULARY.index(char)] = 0.3 if i in weak else 0.8
        out[row, 0] = 0.6 if i in weak else 0.1
    return out


def test_every_form_of_a_character_counts_for_it() -> None:
    assert [VOCABULARY[i] for i in SLOTS[MRZ_ALPHABET.index("N")]] == ["N", "n", "\uff2e"]
    assert [VOCABULARY[i] for i in SLOTS[MRZ_ALPHABET.index("<")]] == ["<", "\u00ab"]


def test_a_doubled_letter_keeps_both_cells() -> None:
    # Measured on the recogniser: ANNA's second N scores below the blank and the greedy read
    # is ANA, a valid-looking name; on the pitch it is one cell, and it is read.
    line = "SMITH<<ANNA<<<<<<<<<<<<<<<<<<<"
    read = decode(frames(line, weak=(line.index("NN") + 1,)), SLOTS, 30)
    assert read is not None and read.text == line
    assert read.min_margin < 0.5  # that cell is the least certain


def test_two_letters_merged_into_one_run_of_frames_are_refused() -> None:
    line = "SMITH<<ANNA<<<<<<<<<<<<<<<<<<<"
    out = frames(line)
    row = 3 + 4 * line.index("NN")
    out[row : row + 5, 0] = 0.1  # N on every frame from the first N to the second
    out[row : row + 5, VOCABULARY.index("N")] = 0.8
    assert decode(out, SLOTS, 30) is None  # never read as one N and a shifted rest


def test_letters_the_blank_outscores_are_read_in_their_cells() -> None:
    line = "ERIKSSON<<MARIA<ELISE<<<<<<<<<"
    read = decode(frames(line, weak=(10, 11, 16)), SLOTS, 30)
    assert read is not None and read.text == line


def test_lower_case_and_full_width_forms_read_as_the_letter() -> None:
    read = decode(frames("\uff2eGUYEN<<aNNA<<<<<<<<<<<<<<<<<<"), SLOTS, 30)
    assert read is not None and read.text == "NGUYEN<<ANNA<<<<<<<<<<<<<<<<<<"


def test_a_first_cell_the_frames_missed_is_placed_at_the_start() -> None:
    line = "P<GBRNGUYEN<<JOHAN<<<<<<<<<<<<<<<<<<<<<<<<<<"
    read = decode(frames(line, weak=(0,)), SLOTS, 44)
    assert read is not None and read.text == line


@pytest.mark.parametrize("cells", [36, 50])
def test_frames_of_another_length_do_not_fit(cells: int) -> None:
    assert (
        decode(frames(list("P<GBRNGUYEN<<JOHAN<<<<<<<<<<<<<<<<<<<<<<<<<<")), SLOTS, cells) is None
    )


def test_irregular_frames_do_not_fit_a_pitch() -> None:
    out = frames("IDFRABDAA24FD66<<<<<<<<<<<<<<<")
    out[40:, :] = 0.001
    out[40:, 0] = 0.9
    out[60, VOCABULARY.index("A")] = 0.8  # a stray character half-way between two cells
    out[60, 0] = 0.1
    out[62, VOCABULARY.index("A")] = 0.8
    out[62, 0] = 0.1
    assert decode(out, SLOTS, 30) is None


def test_a_cell_is_read_within_its_field_class_and_marked_forced() -> None:
    # Measured on JPEG pages: the recogniser ranked 0 first in the C of OCONNOR and the printed
    # C second. A name cell allows only letters and `<` (9303-3 §4.6): read within them, the
    # cell is the C, and it is marked forced (reported as a class repair, cross-checked).
    line = "OCONNOR<<PETER<<<<<<<<<<<<<<<<"
    out = frames(line)
    row = 3 + 4 * 1
    out[row, VOCABULARY.index("0")] = 0.8
    out[row, VOCABULARY.index("C")] = 0.5
    free = decode(out, SLOTS, 30)
    assert free is not None and free.text == "O0ONNOR<<PETER<<<<<<<<<<<<<<<<" and free.forced == ()
    read = decode(out, SLOTS, 30, "A" * 30)
    assert read is not None and read.text == line and read.forced == (1,)
    digits = decode(out, SLOTS, 30, "D" * 30)  # a digit field: digits and `<` only
    assert digits is not None and set(digits.text) <= set("0123456789<")


def test_classes_must_cover_every_cell() -> None:
    with pytest.raises(ValueError):
        decode(frames("OCONNOR<<PETER<<<<<<<<<<<<<<<<"), SLOTS, 30, "A" * 29)
