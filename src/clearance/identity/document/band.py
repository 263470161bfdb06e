"""Where the MRZ lines are in a photo: grouping the detector's text lines, and one level strip per
line cut on the geometry the whole band shares.

ICAO 9303-3 §4.4 prints every MRZ character in a cell of the same width, and 9303-4/5 §4.2.2
fixes every line of a layout to the same number of cells from the same left margin: the lines
of one MRZ are boxes of the same length, stacked on one slope. The detector boxes each line on
its own, and on a rotated photo it cuts the first or last character off a box, or tilts one box
a little differently from its neighbours. So each line is re-boxed on the band's common slope
(the length-weighted mean direction of every box edge) and common left and right ends (the
outermost of any line's), before being warped onto a level strip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from clearance.identity.document.repair import MAX_LENGTH_REPAIR

_MRZ_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<")
# Characters the recogniser must have seen on a line for it to seed an MRZ group. Short of a
# layout's width: the recogniser drops letters of names (a TD1 name line of 30 cells has been
# read as 25 characters); the pitch read counts the cells instead.
_MIN_TEXT = 20
# A neighbour of such a line may show fewer (a short name line is mostly fillers, which the
# detector reads in pieces): its box, alike in size, is what places it in the group.
_MIN_NEIGHBOUR_TEXT = 6
_MIN_LINE_HEIGHT = 32  # a line strip is enlarged to at least this many pixels


@dataclass(frozen=True, slots=True)
class TextLine:
    text: str  # normalised (upper case, no spaces)
    box: NDArray[np.float32]  # 4 x 2 corners, clockwise from top-left
    score: float

    @property
    def angle(self) -> float:
        (x0, y0), (x1, y1) = self.box[0], self.box[1]
        return math.degrees(math.atan2(float(y1 - y0), float(x1 - x0)))

    @property
    def centre(self) -> NDArray[np.float32]:
        return np.asarray(self.box.mean(axis=0), dtype=np.float32)

    @property
    def height(self) -> float:
        return float(np.linalg.norm(self.box[3] - self.box[0]))

    @property
    def width(self) -> float:
        return float(np.linalg.norm(self.box[1] - self.box[0]))


def _mrz_like(text: str, least: int) -> bool:
    if len(text) < least:
        return False
    return sum(c in _MRZ_CHARS for c in text) / len(text) >= 0.9 and "<" in text


def _merge_rows(lines: list[TextLine]) -> list[TextLine]:
    """Join boxes the detector split on one text row (it cuts long filler runs), left to right."""
    if not lines:
        return []
    angle = math.radians(float(np.median([line.angle for line in lines])))
    along = np.array([math.cos(angle), math.sin(angle)], dtype=np.float32)
    normal = np.array([-math.sin(angle), math.cos(angle)], dtype=np.float32)
    rows: list[list[TextLine]] = []
    for line in sorted(lines, key=lambda t: float(t.centre @ normal)):
        if rows and abs(float((line.centre - rows[-1][-1].centre) @ normal)) < 0.5 * line.height:
            rows[-1].append(line)
        else:
            rows.append([line])
    merged = []
    for row in rows:
        row.sort(key=lambda t: float(t.centre @ along))
        box = np.array([row[0].box[0], row[-1].box[1], row[-1].box[2], row[0].box[3]])
        text = "".join(t.text for t in row)
        merged.append(TextLine(text, box.astype(np.float32), min(t.score for t in row)))
    return merged


def _alike(group: list[TextLine]) -> bool:
    """MRZ lines hold the same number of cells on the same pitch (9303-3 §4.4): their boxes are
    about equally long and equally high, whatever the recogniser made of their text."""
    widths = [g.width for g in group]
    heights = [g.height for g in group]
    return max(widths) <= 1.1 * min(widths) and max(heights) <= 1.4 * min(heights)


def _plausible(group: list[TextLine]) -> bool:
    """Line lengths a layout allows, a few characters short or long (9303-5/4 §4.2.2), on at
    least one line read well enough to seed the group."""
    longest = max(len(g.text) for g in group)
    if not any(_mrz_like(g.text, _MIN_TEXT) for g in group):
        return False
    if len(group) == 3:
        return longest <= 30 + MAX_LENGTH_REPAIR
    return longest >= 36 - MAX_LENGTH_REPAIR


def widths(group: list[TextLine]) -> tuple[int, ...]:
    """The line widths the group may have, the likelier first: TD1 30; TD3/MRV-A 44 or
    TD2/MRV-B 36 (9303-4/5/6/7), judged by the longest line read."""
    if len(group) == 3:
        return (30,)
    longest = max(len(g.text) for g in group)
    return (44, 36) if abs(longest - 44) <= abs(longest - 36) else (36, 44)


def mrz_group(lines: list[TextLine]) -> list[TextLine]:
    """The bottom-most run of 3 or 2 MRZ-looking lines alike in size and of a layout's length."""
    candidates = [line for line in _merge_rows(lines) if _mrz_like(line.text, _MIN_NEIGHBOUR_TEXT)]
    if not candidates:
        return []
    angle = math.radians(float(np.median([c.angle for c in candidates])))
    normal = np.array([-math.sin(angle), math.cos(angle)], dtype=np.float32)
    candidates.sort(key=lambda c: float(c.centre @ normal))
    for count in (3, 2):
        for start in range(len(candidates) - count, -1, -1):
            group = candidates[start : start + count]
            if _alike(group) and _plausible(group):
                return group
    return []


def level(group: list[TextLine]) -> list[TextLine]:
    """The group's lines re-boxed on the band's common slope and common ends (see above)."""
    edges = np.concatenate([[g.box[1] - g.box[0], g.box[2] - g.box[3]] for g in group])
    along = edges.sum(axis=0)  # longer edges weigh more: their direction is measured better
    along = along / max(float(np.linalg.norm(along)), 1e-6)
    normal = np.array([-along[1], along[0]], dtype=np.float32)
    corners = np.concatenate([g.box for g in group])
    start, end = float((corners @ along).min()), float((corners @ along).max())
    height = float(np.median([g.height for g in group]))
    out = []
    for line in group:
        middle = float(line.centre @ normal)
        top, bottom = (middle - height / 2) * normal, (middle + height / 2) * normal
        box = np.array(
            [start * along + top, end * along + top, end * along + bottom, start * along + bottom]
        )
        out.append(TextLine(line.text, box.astype(np.float32), line.score))
    return out


def skew_degrees(group: list[TextLine]) -> float:
    return float(np.median([g.angle for g in group]))


def line_strip(rgb: NDArray[np.uint8], box: NDArray[np.float32]) -> NDArray[np.uint8]:
    """One line, de-skewed by a perspective warp of its box (with a margin) onto a level strip."""
    tl, tr, br, bl = box.astype(np.float32)
    down = ((bl - tl) + (br - tr)) / 2  # the box's height direction
    along = ((tr - tl) + (br - bl)) / 2
    height = float(np.linalg.norm(down))
    # The recogniser was trained on tight detector crops: keep the vertical margin small.
    pad_v, pad_h = down * 0.06, along / max(float(np.linalg.norm(along)), 1.0) * height * 0.4
    source = np.array(
        [tl - pad_v - pad_h, tr - pad_v + pad_h, br + pad_v + pad_h, bl + pad_v - pad_h],
        dtype=np.float32,
    )
    out_h = max(_MIN_LINE_HEIGHT, round(height * 1.12))  # enlarge small text only, never shrink
    out_w = max(1, round(float(np.linalg.norm(source[1] - source[0])) * out_h / (height * 1.12)))
    target = np.array([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]], dtype=np.float32)
    warp = cv2.getPerspectiveTransform(source, target)
    strip = cv2.warpPerspective(rgb, warp, (out_w, out_h), borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(strip, dtype=np.uint8)
