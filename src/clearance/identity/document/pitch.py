"""Read one MRZ line cell by cell on the fixed pitch, from the recogniser's per-frame output.

ICAO 9303-3 §4.4: every MRZ character sits in a cell of the same width (2.54 mm pitch), so a
line of a known layout has a known number of cells (TD1 30, TD2/MRV-B 36, TD3/MRV-A 44;
9303-5/6/4 §4.2.2). The recogniser is a CTC model: its greedy decoding merges two equal letters
read without a blank frame between them (ANNA read as ANA) and silently skips a letter whose
frames score blank highest, so a name comes out shorter but valid-looking. Here the frames are
placed on a grid of exactly that many cells, fitted to the frames where a character is the most
probable output, and every cell takes the MRZ character with the highest probability inside
it. A dropped or merged letter therefore still occupies its own cell; a line whose frames do not
fit the grid is not read at all (None), never padded.

A cell can be read within the characters its field allows (`LETTERS`: 9303-3 §4.6 allows only
A-Z and `<` in names, and §5's codes are letters; `DIGITS`). The name line is read so: on JPEG
pages the recogniser ranked a digit first in a name cell (C, U, N, S read as 0, 0, 2, 9), the
letter it ranked next was the printed one, and scales that disagreed on the digit agreed on the
letter. Such a cell is `forced` (the recogniser's own first choice was a character the field
cannot hold) and is reported like a class repair, which the decision cross-checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

MRZ_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"
_FULLWIDTH = 0xFEE0  # the model's vocabulary also holds full-width forms of Latin letters
_FILLERS = "\u2039\u00ab\uff1c"  # OCR sees the filler `<` as these too
_MIN_SPIKES = 8
_MAX_RESIDUAL = 0.35  # a character frame further than this (in cells) from its cell: no fit
# Per-cell field classes (as `repair`'s layout classes): A a letter or `<`, D a digit or `<`,
# X any MRZ character.
_ALLOWED = {
    "A": np.array([c.isalpha() or c == "<" for c in MRZ_ALPHABET]),
    "D": np.array([c.isdigit() or c == "<" for c in MRZ_ALPHABET]),
    "X": np.ones(len(MRZ_ALPHABET), dtype=bool),
}


@dataclass(frozen=True, slots=True)
class PitchRead:
    text: str
    margins: tuple[float, ...]  # per cell: best probability minus the runner-up's
    # 0-based cells whose recogniser's first choice was outside the field's class (see above)
    forced: tuple[int, ...] = ()

    @property
    def min_margin(self) -> float:
        return min(self.margins)


def columns(vocabulary: list[str]) -> list[list[int]]:
    """For each MRZ character, the vocabulary entries that denote it."""
    columns: list[list[int]] = [[] for _ in MRZ_ALPHABET]
    for index, entry in enumerate(vocabulary):
        for slot, char in enumerate(MRZ_ALPHABET):
            forms = {char, char.lower(), chr(ord(char) + _FULLWIDTH)}
            if entry in forms or (char == "<" and entry in _FILLERS):
                columns[slot].append(index)
    return columns


def _grid(frames: NDArray[np.float32], blank: NDArray[np.float32], cells: int) -> NDArray[Any]:
    """Cell centres (in frames) of a `cells`-long line, or an empty array when none fits."""
    spikes = _spikes(frames.max(axis=1) > blank)
    if len(spikes) < _MIN_SPIKES:
        return np.empty(0)
    steps = np.diff(spikes)
    if len(steps) < _MIN_SPIKES // 2:
        return np.empty(0)
    rough = float(np.median(steps))
    single = steps[(steps > 0.6 * rough) & (steps < 1.5 * rough)]  # one cell apart
    slope, intercept = float(single.mean()), float(spikes[0])
    # Step counts in whole cells, then a least-squares line through (cell index, frame); twice,
    # as the first pitch is only the mean step.
    for _ in range(2):
        index = np.round((spikes - intercept) / slope)
        index -= index[0]
        slope, intercept = np.polyfit(index, spikes, 1)
    residual = np.abs(intercept + slope * index - spikes) / slope
    if slope <= 1 or float(residual.max()) > _MAX_RESIDUAL:
        return np.empty(0)
    seen = int(index[-1]) + 1
    if seen > cells or seen < cells - 3:
        return np.empty(0)
    # Cells the frames did not show are at the start or the end: take the placement whose
    # extra cells hold the most character evidence.
    strength = frames.max(axis=1) - blank
    best, best_evidence = 0, -np.inf
    for shift in range(cells - seen + 1):
        centres = intercept + slope * (np.arange(cells) - shift)
        if centres[0] < -0.5 * slope or centres[-1] > len(frames) - 0.5 * slope:
            continue
        extra = [c for i, c in enumerate(centres) if i < shift or i >= shift + seen]
        evidence = sum(float(strength[_frame_range(c, slope, len(frames))].max()) for c in extra)
        if evidence > best_evidence:
            best, best_evidence = shift, evidence
    if best_evidence == -np.inf:
        return np.empty(0)
    return np.asarray(intercept + slope * (np.arange(cells) - best))


def _spikes(character: NDArray[np.bool_]) -> NDArray[np.float64]:
    """The centre of each run of frames where a character, not the blank, is likeliest: a
    character is often seen on two adjacent frames."""
    edges = np.diff(np.concatenate(([0], character.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return np.asarray((starts + ends - 1) / 2, dtype=np.float64)


def _frame_range(centre: float, pitch: float, count: int) -> slice:
    low = max(0, int(np.floor(centre - pitch / 2)) + 1)
    high = min(count, max(low + 1, int(np.ceil(centre + pitch / 2))))
    return slice(low, high)


class PitchDecoder:
    """Wraps the recogniser of a `RapidOCR` engine; reads a level line strip cell by cell."""

    def __init__(self, engine: Any) -> None:
        self._rec: Any = engine.text_rec
        self._columns = columns(list(self._rec.postprocess_op.character))

    def _frames(self, rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
        height, width = rgb.shape[:2]
        image = self._rec.resize_norm_img(np.ascontiguousarray(rgb[:, :, ::-1]), width / height)
        output = self._rec.session(image[np.newaxis].astype(np.float32))[0][0]
        return np.asarray(output, dtype=np.float32)

    def read(self, rgb: NDArray[np.uint8], cells: int, classes: str = "") -> PitchRead | None:
        """The line as `cells` MRZ characters, or None when its frames do not fit the pitch;
        `classes` (one of A, D, X per cell) restricts each cell to its field's characters."""
        return decode(self._frames(rgb), self._columns, cells, classes)


def decode(
    output: NDArray[np.float32], slots: list[list[int]], cells: int, classes: str = ""
) -> PitchRead | None:
    """Per-frame CTC probabilities (frames x vocabulary, entry 0 the blank) read as `cells`
    MRZ characters on a fitted fixed-pitch grid, or None when the frames do not fit one.
    `slots` (from `columns`) lists, per MRZ character, the vocabulary entries that denote it;
    `classes`, when given, one field class per cell (A, D or X): a cell takes the most probable
    character its class allows (the grid is fitted on every character, as without)."""
    if classes and len(classes) != cells:
        raise ValueError("one field class per cell")
    frames = np.stack([output[:, cols].sum(axis=1) for cols in slots], axis=1)
    centres = _grid(frames, output[:, 0], cells)
    if len(centres) == 0:
        return None
    pitch = float(centres[1] - centres[0])
    text, margins, forced = [], [], []
    for i, centre in enumerate(centres):
        scores = frames[_frame_range(float(centre), pitch, len(frames))].max(axis=0)
        allowed = _ALLOWED[classes[i]] if classes else _ALLOWED["X"]
        order = [int(k) for k in np.argsort(scores)[::-1] if allowed[k]]
        if not allowed[int(np.argmax(scores))]:
            forced.append(i)
        text.append(MRZ_ALPHABET[order[0]])
        margins.append(float(scores[order[0]] - scores[order[1]]))
    return PitchRead("".join(text), tuple(margins), tuple(forced))
