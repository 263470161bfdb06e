"""Reading the MRZ from photos: the committed synthetic set (tests/fixtures/identity)."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clearance.errors import MrzCheckDigitError, MrzError, MrzNotFound
from clearance.identity.document import load_image
from clearance.identity.document.ocr import MrzReader
from clearance.identity.mrz import DocumentData, DocumentFormat, Sex, compose
from tests.fixtures.identity.synth import Difficulty, make_sample, render_page, sample_of

FIXTURES = Path(__file__).parents[1] / "fixtures" / "identity"
TODAY = date(2026, 1, 1)  # the day the set was generated: its documents are not expired


@pytest.fixture(scope="module")
def reader() -> MrzReader:
    return MrzReader()


def load(path: Path) -> np.ndarray:  # type: ignore[type-arg]
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)


@pytest.mark.slow
def test_every_accepted_read_is_exact_and_most_are_read(reader: MrzReader) -> None:
    exact = 0
    for image in sorted(FIXTURES.glob("document_*.jpg")):
        truth = tuple(image.with_suffix(".mrz").read_text().split())
        try:
            read = reader.read(load(image), today=TODAY)
        except MrzError:
            continue  # refused with a reason: allowed, a false accept is not
        assert read.result.lines == truth, f"false accept on {image.name}"
        exact += 1
    assert exact >= 4  # measured: all but the hard one (bench/identity.py has the rates)


@pytest.mark.slow
def test_a_doubled_letter_in_a_name_is_read_on_the_pitch(reader: MrzReader) -> None:
    # The greedy recogniser read this name as SMITH<<ANA, which passed every check digit;
    # read cell by cell on the fixed pitch it keeps both Ns.
    sample = make_sample(10_000, Difficulty.CLEAN, TODAY)
    assert sample.lines[2] == "SMITH<<ANNA<<<<<<<<<<<<<<<<<<<"
    read = reader.read(sample.image, today=TODAY)
    assert read.result.lines == sample.lines
    assert read.passes == 1


def test_an_image_without_an_mrz_is_refused(reader: MrzReader) -> None:
    portrait = load(FIXTURES / "faces" / "hopper.jpg")
    with pytest.raises(MrzNotFound):
        reader.read(portrait, today=TODAY)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [10_000, 10_006])
def test_rotated_pages_the_earlier_reader_refused_now_read_exactly(
    reader: MrzReader, seed: int
) -> None:
    # Both were refused before the band geometry (every line re-boxed on the MRZ's common slope
    # and ends, so no box loses its first cell) and the squeezed name scales.
    sample = make_sample(seed, Difficulty.ROTATED, TODAY)
    read = reader.read(sample.image, today=TODAY)
    assert read.result.lines == sample.lines
    assert abs(read.skew_degrees) >= 2


def example_ada(fmt: DocumentFormat, state: str) -> DocumentData:
    code = "P" if fmt is DocumentFormat.TD3 else "ID"
    return DocumentData(
        fmt, code, state, state, "EXAMPLE", "ADA", "AB1234567", date(1990, 5, 6), Sex.FEMALE,
        date(2030, 1, 1),
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fmt", "state", "difficulty", "seed"),
    [
        (DocumentFormat.TD3, "D", Difficulty.ROTATED, 1),
        (DocumentFormat.TD3, "GBR", Difficulty.CLEAN, 2),
        (DocumentFormat.TD1, "GBR", Difficulty.CLEAN, 2),
    ],
)
def test_a_short_name_with_a_long_filler_run_reads_exactly(
    reader: MrzReader, fmt: DocumentFormat, state: str, difficulty: Difficulty, seed: int
) -> None:
    # EXAMPLE<<ADA: the detector reads the OCR-B X as a sign outside the MRZ set, which the
    # name agreement took for a letter the pitch reads lacked; the pages were refused.
    sample = sample_of(example_ada(fmt, state), difficulty, seed)
    assert "EXAMPLE<<ADA<<<<<<<<<<<<<<<<<<" in "".join(sample.lines)
    read = reader.read(sample.image, today=TODAY)
    assert read.result.lines == sample.lines
    assert (read.result.primary_identifier, read.result.secondary_identifier) == ("EXAMPLE", "ADA")


@pytest.mark.slow
@pytest.mark.parametrize("field", ["birth_date", "document_number"])
def test_a_page_printed_with_a_wrong_check_digit_is_refused(reader: MrzReader, field: str) -> None:
    upper, lower = compose(example_ada(DocumentFormat.TD3, "GBR"))
    at = 19 if field == "birth_date" else 9  # 9303-4 §4.2.2.2: the field's check digit
    wrong = str((int(lower[at]) + 3) % 10)
    page = render_page((upper, lower[:at] + wrong + lower[at + 1 :]))
    with pytest.raises(MrzCheckDigitError) as refused:
        reader.read(np.asarray(page, dtype=np.uint8), today=TODAY)
    # Read right, and not "repaired" into validity by another scale or pass.
    assert field in refused.value.fields


def _jpeg(image: np.ndarray, quality: int = 90) -> np.ndarray:  # type: ignore[type-arg]
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG", quality=quality)
    return load_image(out.getvalue()).rgb


@pytest.mark.slow
@pytest.mark.parametrize("seed", [30_008, 30_012, 30_023])
def test_blurred_jpeg_pages_read_their_name_within_its_field_class(
    reader: MrzReader, seed: int
) -> None:
    # Blurred pages uploaded as JPEG quality 90 (bench/identity.py's genuine documents): the
    # recogniser ranks a digit first in some name cells (OCONNOR as O00NN0R, NGUYEN as NG0YEN)
    # differently at each scale, and the name agreement refused them. Read within the name
    # line's class (letters and `<`, 9303-3 §4.6) every scale agrees on the printed name; the
    # cells so decided are reported as unchecked class repairs for the decision to confirm.
    sample = make_sample(seed, Difficulty.BLURRED, TODAY)
    read = reader.read(_jpeg(sample.image), today=TODAY)
    assert read.result.lines == sample.lines
    name_at = 2 if len(sample.lines) == 3 else 0
    assert any(r.line == name_at and r.kind == "class" and r.unchecked for r in read.repairs)
