"""Reading the MRZ from photos: the committed synthetic set (tests/fixtures/identity)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clearance.errors import MrzError, MrzNotFound
from clearance.identity.ocr import MrzReader

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
    assert exact >= 3  # measured: clean, rotated, blurred (see docs/identity.md)


def test_an_image_without_an_mrz_is_refused(reader: MrzReader) -> None:
    portrait = load(FIXTURES / "faces" / "hopper.jpg")
    with pytest.raises(MrzNotFound):
        reader.read(portrait, today=TODAY)
