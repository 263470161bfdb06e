"""Find and read the MRZ in a photo, offline, with the ONNX models inside rapidocr-onnxruntime.

The detector finds the text lines of the whole photo; those that look like an MRZ (ICAO 9303-3
§4.4 character set; rows the detector split are joined) are grouped bottom-up by geometry: MRZ
lines hold the same number of cells on the same pitch, so their boxes are alike in size
whatever the recogniser made of their text. Every line is de-skewed on its own — a perspective
warp of its box onto a level strip (9303-3 §4.11 allows 3 degrees on the document, a hand-held
photo adds more). Pass 1 reads each strip cell by cell on the fixed pitch (`pitch`): a letter
the recogniser drops or merges keeps its cell. The name line, which no check digit covers, is
read at three scales, and every read that fits the pitch (at least two) must give the same
name, one that holds the detector's own read in order. Passes 2 and 3 (the detector's reads,
then squeezed strips; the name confirmed by two of three reads) run only when pass 1 is refused.
Each pass goes through the structural `repair` and `parse_mrz`: a read passes every check digit
or is refused with the reason.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from rapidocr_onnxruntime import RapidOCR

from clearance.errors import MrzError, MrzFormatError, MrzNotFound
from clearance.identity.mrz import MrzResult, parse_mrz
from clearance.identity.pitch import PitchDecoder, PitchRead
from clearance.identity.repair import MAX_LENGTH_REPAIR, Repair, name_content, normalise, repair

_MRZ_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<")
_MAX_SIDE = 1600  # larger photos are scaled down first: the MRZ stays ~10+ px per character
# The MRZ's fixed 2.54 mm pitch (9303-3 §4.4) spaces letters wider than the text the recogniser
# was trained on; it drops letters of names unless the strip is squeezed. Measured on the
# synthetic set: 0.8 reads best; 0.65 is the independent second read that confirms a name.
_SQUEEZE = 0.8
_CONFIRM_SQUEEZE = 0.65
# The pitch read (pass 1) reads the strip as is, stretched and squeezed: the recogniser's frames
# fall differently on the cells at each scale; a name must read the same at all of them.
_PITCH_SCALES = (1.0, 1.2, 0.9)
_MIN_TEXT = 20  # characters the recogniser must have seen on a line to consider it
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


@dataclass(frozen=True, slots=True)
class MrzRead:
    result: MrzResult
    repairs: tuple[Repair, ...]
    skew_degrees: float
    passes: int  # 1 read on the character pitch, 2 the detector's read, 3 the de-skewed strips

    @property
    def unchecked_repairs(self) -> bool:
        """A repair touched a name, code or sex: cross-check before trusting those fields."""
        return any(r.unchecked for r in self.repairs)


def _looks_like_mrz(text: str) -> bool:
    # Short of a layout's width: the recogniser drops letters of names (a TD1 name line of 30
    # cells has been read as 25 characters); the pitch read counts the cells instead.
    if len(text) < _MIN_TEXT:
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
        height = float(np.linalg.norm(line.box[3] - line.box[0]))
        if rows and abs(float((line.centre - rows[-1][-1].centre) @ normal)) < 0.5 * height:
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
    widths = [float(np.linalg.norm(g.box[1] - g.box[0])) for g in group]
    heights = [float(np.linalg.norm(g.box[3] - g.box[0])) for g in group]
    return max(widths) <= 1.1 * min(widths) and max(heights) <= 1.4 * min(heights)


def _plausible(group: list[TextLine]) -> bool:
    """Line lengths a layout allows, a few characters short or long (9303-5/4 §4.2.2)."""
    longest = max(len(g.text) for g in group)
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


def _mrz_group(lines: list[TextLine]) -> list[TextLine]:
    """The bottom-most run of 3 or 2 MRZ-looking lines alike in size and of a layout's length."""
    candidates = [line for line in _merge_rows(lines) if _looks_like_mrz(line.text)]
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


class MrzReader:
    """Holds the OCR models (loaded once, ~0.5 s); `read` is safe to call repeatedly."""

    def __init__(self) -> None:
        self._engine: Any = RapidOCR()
        self._pitch = PitchDecoder(self._engine)

    def _ocr(self, rgb: NDArray[np.uint8]) -> list[TextLine]:
        # The engine wants BGR; we de-skew ourselves, so its 180-degree classifier is off.
        found, _ = self._engine(np.ascontiguousarray(rgb[:, :, ::-1]), use_cls=False)
        return [
            TextLine(normalise(str(text)), np.asarray(box, dtype=np.float32), float(score))
            for box, text, score in (found or [])
        ]

    def _strips(
        self, image: NDArray[np.uint8], group: list[TextLine], name_at: int, name: str
    ) -> list[TextLine]:
        """Pass 2: every line recognised again on its de-skewed, squeezed strip."""
        return [
            TextLine(name, line.box, line.score)
            if i == name_at
            else self._recognise_line(image, line, _SQUEEZE)
            for i, line in enumerate(group)
        ]

    def _recognise_line(self, rgb: NDArray[np.uint8], line: TextLine, squeeze: float) -> TextLine:
        """Recognition only, on the line's own de-skewed strip, squeezed horizontally."""
        strip = _squeezed(_line_strip(rgb, line.box), squeeze)
        found, _ = self._engine(
            np.ascontiguousarray(strip[:, :, ::-1]), use_det=False, use_cls=False
        )
        text, score = (str(found[0][0]), float(found[0][1])) if found else ("", 0.0)
        return TextLine(normalise(text), line.box, score)

    def _pitch_lines(
        self, image: NDArray[np.uint8], group: list[TextLine], name_at: int
    ) -> list[TextLine]:
        """Pass 1: every line read cell by cell on the fixed MRZ pitch (see `pitch`); the name
        line, which no check digit covers, must read the same on a second, squeezed strip."""
        errors: list[MrzFormatError] = []
        for width in widths(group):
            try:
                return self._pitch_width(image, group, name_at, width)
            except MrzFormatError as failed:
                errors.append(failed)
        raise errors[0]  # the likelier width's reason

    def _pitch_width(
        self, image: NDArray[np.uint8], group: list[TextLine], name_at: int, width: int
    ) -> list[TextLine]:
        lines = []
        for i, line in enumerate(group):
            strip = _line_strip(image, line.box)
            reads: list[PitchRead] = []
            for scale in _PITCH_SCALES:
                got = self._pitch.read(_squeezed(strip, scale), width)
                reads += [got] if got is not None else []
                if i != name_at and reads:
                    break
            if i == name_at and (agreed := _agreed(reads, line.text)) is not None:
                reads = [agreed]
            elif not reads or i == name_at:
                raise MrzFormatError(
                    "the name line did not read the same at every scale"
                    if i == name_at and reads
                    else f"line {i + 1} does not fit the MRZ character pitch"
                )
            lines.append(TextLine(reads[0].text, line.box, reads[0].min_margin))
        return lines

    def _greedy_lines(
        self, image: NDArray[np.uint8], group: list[TextLine], name_at: int, passes: int
    ) -> list[TextLine]:
        """Passes 2 and 3: the detector's own reads, then every line recognised again on its
        de-skewed, squeezed strip. The name read used must agree with one of two other reads
        (squeezed 0.8 and 0.65), since no check digit covers it."""
        name_reads = [
            group[name_at].text,
            self._recognise_line(image, group[name_at], _SQUEEZE).text,
            self._recognise_line(image, group[name_at], _CONFIRM_SQUEEZE).text,
        ]
        lines = group if passes == 2 else self._strips(image, group, name_at, name_reads[1])
        used = name_content(lines[name_at].text)
        if [name_content(r) for r in name_reads].count(used) < 2:
            raise MrzFormatError("the name line did not read the same twice")
        return lines

    def read(self, rgb: NDArray[np.uint8], *, today: date, allow_specimen: bool = False) -> MrzRead:
        image = _limit_size(rgb)
        group = _mrz_group(self._ocr(image))
        if not group:
            raise MrzNotFound("no machine readable zone was found in the image")
        skew = float(np.median([g.angle for g in group]))
        name_at = 2 if len(group) == 3 else 0
        error: MrzError | None = None
        for passes in (1, 2, 3):
            try:
                lines = (
                    self._pitch_lines(image, group, name_at)
                    if passes == 1
                    else self._greedy_lines(image, group, name_at, passes)
                )
                return _parse(lines, skew, passes, today, allow_specimen)
            except MrzError as failed:
                error = failed if error is None else _more_specific(error, failed)
        raise error or MrzNotFound("no machine readable zone was found in the image")


def _agreed(reads: list[PitchRead], detected: str) -> PitchRead | None:
    """A name line's read when every scale that fitted the pitch (at least two) read the same
    name, no check digit covering it, and that name holds the detector's own read of the line
    in order: that read drops and merges letters but seldom invents one."""
    names = {name_content(read.text) for read in reads}
    if len(reads) < 2 or len(names) != 1 or not _holds(names.pop(), name_content(detected)):
        return None
    return reads[0]


def _holds(text: str, part: str) -> bool:
    """`part` is a subsequence of `text`, runs of fillers counted once (OCR doubles them)."""
    remaining = iter(re.sub("<+", "<", text))
    return all(char in remaining for char in re.sub("<+", "<", part))


def _parse(
    group: list[TextLine], skew: float, passes: int, today: date, allow_specimen: bool
) -> MrzRead:
    lines, repairs = repair([g.text for g in group])
    result = parse_mrz(lines, today=today, allow_specimen=allow_specimen)
    return MrzRead(result=result, repairs=repairs, skew_degrees=skew, passes=passes)


def _more_specific(a: MrzError, b: MrzError) -> MrzError:
    """Report the error that got furthest through validation (format < check digit < field)."""
    order = ("mrz_format", "mrz_check_digit", "mrz_field", "mrz_unknown_code", "specimen_document")
    rank = {code: i for i, code in enumerate(order)}
    return b if rank.get(b.code, -1) > rank.get(a.code, -1) else a


def _squeezed(strip: NDArray[np.uint8], squeeze: float) -> NDArray[np.uint8]:
    width = max(1, round(strip.shape[1] * squeeze))
    size = (width, strip.shape[0])
    return np.asarray(cv2.resize(strip, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _limit_size(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    height, width = rgb.shape[:2]
    scale = _MAX_SIDE / max(height, width)
    if scale >= 1:
        return rgb
    size = (round(width * scale), round(height * scale))
    return np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _line_strip(rgb: NDArray[np.uint8], box: NDArray[np.float32]) -> NDArray[np.uint8]:
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
