"""Find and read the MRZ in a photo, offline, with the ONNX models inside rapidocr-onnxruntime.

The detector finds the text lines of the whole photo; `band` groups the MRZ lines by geometry
and re-boxes them on the band's common slope and ends, then warps each onto a level strip
(9303-3 §4.11 allows 3 degrees on the document, a hand-held photo adds more). Pass 1 reads each
strip cell by cell on the fixed pitch (`pitch`): a letter the recogniser drops or merges keeps
its cell. The name line, which no check digit covers, is read within the characters its fields
allow (letters and `<`, 9303-3 §4.6 and §5) and taken only when three scales agree
(`consensus`); each checked line is read as is, and at two squeezed scales, then two stretched
ones, only when the lines so far fail their check digits, every candidate going through
`parse_mrz`. Passes 2 and 3
(the detector's reads, then squeezed strips; the name confirmed by two of three reads) run only
when pass 1 is refused. Each pass goes through the structural `repair` and `parse_mrz`: a read
passes every check digit or is refused with the reason.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from rapidocr_onnxruntime import RapidOCR

from clearance.errors import MrzError, MrzFormatError, MrzNotFound
from clearance.identity.document.band import (
    TextLine,
    level,
    line_strip,
    mrz_group,
    skew_degrees,
    widths,
)
from clearance.identity.document.consensus import agreed
from clearance.identity.document.pitch import PitchDecoder, PitchRead
from clearance.identity.document.repair import (
    Repair,
    field_classes,
    forced_repairs,
    name_content,
    normalise,
    repair,
)
from clearance.identity.mrz import MrzResult, parse_mrz

_MAX_SIDE = 1600  # larger photos are scaled down first: the MRZ stays ~10+ px per character
# The MRZ's fixed 2.54 mm pitch (9303-3 §4.4) spaces letters wider than the text the recogniser
# was trained on; it drops letters of names unless the strip is squeezed. Measured on the
# synthetic set: 0.8 reads best; 0.65 is the independent second read that confirms a name.
_SQUEEZE = 0.8
_CONFIRM_SQUEEZE = 0.65
# Pass 1 reads a strip at several horizontal scales: the recogniser's frames fall differently on
# the cells at each. A name must read the same at all three scales of one set (`consensus`); the
# squeezed set reads rotated pages best, the stretched set is asked only when it disagrees.
# Chosen on the tune seeds of bench/identity.py, never on the held-out ones.
_NAME_SCALES = ((0.9, 0.8, 0.7), (1.0, 1.1, 1.2))
# A checked line is read as is first; 0.9 and 0.8 only when the lines fail their check digits,
# then 1.1 and 1.2 (on blurred JPEG pages a C of a document number read as 0 at every squeezed
# scale and as C stretched). Every candidate must pass every check digit (9303-3 §4.9).
_CHECKED_SCALES = ((1.0,), (0.9, 0.8), (1.1, 1.2))


@dataclass(frozen=True, slots=True)
class MrzRead:
    result: MrzResult
    repairs: tuple[Repair, ...]
    skew_degrees: float
    passes: int  # 1 read on the character pitch, 2 the detector's read, 3 the de-skewed strips
    # The page's other text lines as the same OCR pass read them (the visual zone, captions):
    # what the name no check digit covers can be compared with (9303-3 §3.4).
    visual_zone: tuple[str, ...] = ()

    @property
    def unchecked_repairs(self) -> bool:
        """A repair touched a name, code or sex: cross-check before trusting those fields."""
        return any(r.unchecked for r in self.repairs)


class MrzReader:
    """Holds the OCR models (loaded once, ~0.5 s); `read` is safe to call repeatedly."""

    def __init__(self) -> None:
        # One thread per session: onnxruntime's default pool starts a thread per core and pins
        # each to its core itself, overriding the worker's affinity (taskset, systemd
        # CPUAffinity=), so OCR ran on the cores kept for serving (bench/scale.py's burst). A
        # worker scales with its runner processes ([jobs] concurrency) instead.
        self._engine: Any = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)
        self._pitch = PitchDecoder(self._engine)

    def _detect(self, rgb: NDArray[np.uint8]) -> list[TextLine]:
        """Every text line on the photo as the recogniser wrote it (case and spaces kept)."""
        # The engine wants BGR; we de-skew ourselves, so its 180-degree classifier is off.
        found, _ = self._engine(np.ascontiguousarray(rgb[:, :, ::-1]), use_cls=False)
        return [
            TextLine(str(text), np.asarray(box, dtype=np.float32), float(score))
            for box, text, score in (found or [])
        ]

    def _ocr(self, rgb: NDArray[np.uint8]) -> list[TextLine]:
        return [TextLine(normalise(t.text), t.box, t.score) for t in self._detect(rgb)]

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
        strip = _squeezed(line_strip(rgb, line.box), squeeze)
        found, _ = self._engine(
            np.ascontiguousarray(strip[:, :, ::-1]), use_det=False, use_cls=False
        )
        text, score = (str(found[0][0]), float(found[0][1])) if found else ("", 0.0)
        return TextLine(normalise(text), line.box, score)

    def _pitch_candidates(
        self, image: NDArray[np.uint8], group: list[TextLine], name_at: int
    ) -> Iterator[tuple[list[TextLine], tuple[Repair, ...]]]:
        """Pass 1: every line read cell by cell on the fixed MRZ pitch (see `pitch`), at each
        width the group may have; with each candidate, the name cells its class decided
        (`repair.forced_repairs`). The name line is taken only when its reads agree
        (`consensus`); each checked line is read at 1.0, and at 0.9 and 0.8, then 1.1 and 1.2,
        only when the lines so far fail `parse_mrz` (the check digits judge every candidate)."""
        unfit: MrzFormatError | None = None
        strips = [line_strip(image, line.box) for line in group]
        for width in widths(group):
            classes = field_classes(width, len(group))[name_at]
            name = self._name_read(strips[name_at], width, group[name_at].text, classes)
            if name is None:
                unfit = unfit or MrzFormatError(
                    "the name line did not read the same at every scale"
                )
                continue
            forced = forced_repairs(name.text, classes, name_at, name.forced)
            reads = [[name.text] if i == name_at else [] for i in range(len(group))]
            tried: set[tuple[str, ...]] = set()
            for scales in _CHECKED_SCALES:
                for i, strip in enumerate(strips):
                    if i != name_at:
                        more = self._checked_reads(strip, width, scales)
                        reads[i] += [text for text in more if text not in reads[i]]
                for texts in itertools.product(*reads):
                    if texts not in tried:
                        tried.add(texts)
                        yield _lines(group, list(texts)), forced
            if not tried:
                unfit = unfit or MrzFormatError("a checked line does not fit the MRZ pitch")
        if unfit is not None:
            raise unfit

    def _name_read(
        self, strip: NDArray[np.uint8], width: int, detected: str, classes: str
    ) -> PitchRead | None:
        """The agreed name line (`consensus`), each cell read within its field's class; its
        `forced` cells are those any of the agreeing reads took against the recogniser's first
        choice."""
        for scales in _NAME_SCALES:
            reads = [self._pitch.read(_squeezed(strip, scale), width, classes) for scale in scales]
            if (name := agreed(reads, detected, least=len(scales))) is not None:
                forced = {i for read in reads if read is not None for i in read.forced}
                return replace(name, forced=tuple(sorted(forced)))
        return None

    def _checked_reads(
        self, strip: NDArray[np.uint8], width: int, scales: tuple[float, ...]
    ) -> list[str]:
        reads = (self._pitch.read(_squeezed(strip, scale), width) for scale in scales)
        return list(dict.fromkeys(read.text for read in reads if read is not None))

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
        detected = self._detect(image)
        found = mrz_group([TextLine(normalise(t.text), t.box, t.score) for t in detected])
        if not found:
            raise MrzNotFound("no machine readable zone was found in the image")
        skew, group = skew_degrees(found), level(found)
        viz = visual_zone(detected, found)
        name_at = 2 if len(group) == 3 else 0
        error: MrzError | None = None
        try:
            for lines, forced in self._pitch_candidates(image, group, name_at):
                try:
                    return _parse(lines, skew, 1, today, allow_specimen, viz, forced)
                except MrzError as failed:
                    error = failed if error is None else _more_specific(error, failed)
        except MrzFormatError as unfit:
            error = unfit if error is None else _more_specific(error, unfit)
        for passes in (2, 3):
            try:
                lines = self._greedy_lines(image, group, name_at, passes)
                return _parse(lines, skew, passes, today, allow_specimen, viz)
            except MrzError as failed:
                error = failed if error is None else _more_specific(error, failed)
        raise error or MrzNotFound("no machine readable zone was found in the image")


def _lines(group: list[TextLine], texts: list[str]) -> list[TextLine]:
    return [TextLine(text, line.box, line.score) for line, text in zip(group, texts, strict=True)]


def _parse(
    group: list[TextLine],
    skew: float,
    passes: int,
    today: date,
    allow_specimen: bool,
    viz: tuple[str, ...],
    forced: tuple[Repair, ...] = (),
) -> MrzRead:
    lines, repairs = repair([g.text for g in group])
    result = parse_mrz(lines, today=today, allow_specimen=allow_specimen)
    return MrzRead(result, forced + repairs, skew, passes, viz)


def visual_zone(detected: list[TextLine], mrz: list[TextLine]) -> tuple[str, ...]:
    """The text lines that are not part of the MRZ band: a line whose centre lies within a line
    height of any MRZ line's axis is a piece of the MRZ (the detector splits long lines)."""
    axes = []
    for line in mrz:
        along = line.box[1] - line.box[0]
        normal = np.array([-along[1], along[0]]) / max(float(np.linalg.norm(along)), 1e-6)
        axes.append((line.centre, normal, line.height))
    return tuple(
        t.text for t in detected if all(abs(float((t.centre - c) @ n)) > h for c, n, h in axes)
    )


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
