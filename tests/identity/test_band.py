"""MRZ lines found and re-boxed by the geometry they share (ICAO 9303-3 §4.4, 9303-4 §4.2.2)."""

from __future__ import annotations

import math

import numpy as np

from clearance.identity.document.band import TextLine, level, mrz_group

UPPER = "P<DEXEXAMPLE<<ADA<<<<<<<<<<<<<<<<<<<<<<<<<<<"
LOWER = "AB12345671D<<9005064F3001019<<<<<<<<<<<<<<00"


def box(x: float, y: float, width: float, height: float, degrees: float) -> np.ndarray:  # type: ignore[type-arg]
    """A text box rotated about the page origin, clockwise from top-left."""
    a = math.radians(degrees)
    turn = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    corners = np.array([[x, y], [x + width, y], [x + width, y + height], [x, y + height]])
    return np.asarray(corners @ turn.T, dtype=np.float32)


def test_a_box_that_lost_its_first_cell_gets_the_bands_ends() -> None:
    # On rotated photos the detector cut the P off the name line: the pitch read then placed
    # the missing cell at the wrong end. Both lines now span the band's outermost ends.
    upper = TextLine(UPPER[1:], box(126, 600, 1074, 36, 4), 0.9)
    lower = TextLine(LOWER, box(100, 662, 1100, 36, 4.6), 0.9)
    leveled = level([upper, lower])
    along = leveled[1].box[1] - leveled[1].box[0]
    along /= np.linalg.norm(along)
    starts = [float(line.box[0] @ along) for line in leveled]
    ends = [float(line.box[1] @ along) for line in leveled]
    assert abs(starts[0] - starts[1]) < 1e-3 and abs(ends[0] - ends[1]) < 1e-3
    assert float(box(100, 662, 1100, 36, 4)[0] @ along) >= starts[0] - 1  # not cut short
    assert 4 < math.degrees(math.atan2(along[1], along[0])) < 4.6  # one slope for the band
    assert [line.text for line in leveled] == [UPPER[1:], LOWER]


def test_a_name_line_the_detector_read_in_part_joins_its_group() -> None:
    # A short name is mostly fillers, which the detector may return as a fragment only.
    fragment = TextLine("<" * 18, box(100, 600, 1090, 36, 0), 0.8)
    lower = TextLine(LOWER, box(100, 662, 1100, 36, 0), 0.9)
    caption = TextLine("SURNAME", box(340, 100, 120, 26, 0), 0.9)
    assert [g.text for g in mrz_group([caption, fragment, lower])] == [fragment.text, LOWER]


def test_fragments_alone_are_no_mrz() -> None:
    lines = [TextLine("<" * 18, box(100, 600 + 62 * i, 1090, 36, 0), 0.8) for i in range(2)]
    assert mrz_group(lines) == []
