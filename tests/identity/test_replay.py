"""The screen-replay check (document/replay.py) on real synthesised pages: genuine pages (colour,
laser and guilloche portraits, a ghost image, rotated, blurred, low resolution, JPEG q90) are
not flagged; the same pages photographed off a display (synth.screen_photo: sub-pixel stripes
sampled by a camera's Bayer mosaic) are; and the decision sends a flagged page to review."""

from __future__ import annotations

import io
import random
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clearance.identity.decision import decide, read_mrz_text
from clearance.identity.document import load_image
from clearance.identity.document.replay import SUSPECT_SHARE, screen_replay
from clearance.identity.models import (
    Examination,
    FaceCheck,
    Outcome,
    Reason,
    VerificationMethod,
)
from clearance.identity.mrz import DocumentFormat, compose
from clearance.portal.reasons import explain
from tests.fixtures.identity.synth import (
    Difficulty,
    Print,
    degrade,
    printed,
    random_document,
    render_page,
    screen_photo,
)

TODAY = date(2026, 1, 1)
FACE = Path(__file__).parents[1] / "fixtures" / "identity" / "faces" / "collins.jpg"


def _page(seed: int, style: Print, difficulty: Difficulty) -> tuple[Image.Image, random.Random]:
    rng = random.Random(seed)
    photo = Image.open(FACE).convert("RGB")
    ghost = printed(photo, Print.GUILLOCHE, rng)
    lines = compose(random_document(rng, TODAY))
    page = render_page(lines, printed(photo, style, rng), ghost=ghost)
    return degrade(page, difficulty, rng), rng


def _uploaded(image: Image.Image) -> np.ndarray:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return load_image(out.getvalue()).rgb


CASES = [
    (1, Print.COLOUR, Difficulty.CLEAN),
    (2, Print.LASER, Difficulty.ROTATED),
    (3, Print.GUILLOCHE, Difficulty.BLURRED),
    (4, Print.LOW_CONTRAST, Difficulty.LOW_RES),
]


@pytest.mark.parametrize(("seed", "style", "difficulty"), CASES)
def test_a_genuine_page_is_not_a_screen(seed: int, style: Print, difficulty: Difficulty) -> None:
    page, _ = _page(seed, style, difficulty)
    check = screen_replay(_uploaded(page))
    assert not check.suspected
    assert check.share < SUSPECT_SHARE
    assert check.tiles > 0


@pytest.mark.parametrize(("seed", "style", "difficulty"), CASES)
def test_the_same_page_photographed_off_a_screen_is(
    seed: int, style: Print, difficulty: Difficulty
) -> None:
    page, rng = _page(seed, style, difficulty)
    check = screen_replay(_uploaded(screen_photo(page, rng)))
    assert check.suspected
    assert check.share >= SUSPECT_SHARE


def test_ink_in_any_colour_is_no_rainbow() -> None:
    """A fine coloured line pattern (a printed guilloche): every channel varies in phase."""
    y, x = np.mgrid[0:400, 0:600].astype(np.float32)
    wave = np.sin(x * 1.3 + y * 0.4)[..., None]
    paper, ink = np.float32([236, 232, 220]), np.float32([40, 120, 200])
    rgb = np.clip(paper + (ink - paper) * (0.5 + 0.5 * wave), 0, 255).astype(np.uint8)
    assert screen_replay(rgb).share == 0


def test_a_tiny_image_has_no_tiles() -> None:
    check = screen_replay(np.zeros((40, 40, 3), dtype=np.uint8))
    assert (check.share, check.tiles, check.suspected) == (0.0, 0, False)


def _exam(**changes: object) -> Examination:
    mrz, problem = read_mrz_text(compose(random_document(random.Random(7), TODAY)), today=TODAY)
    assert mrz is not None and problem is None and mrz.format in tuple(DocumentFormat)
    exam = Examination(
        document_image=b"",
        selfie_image=b"",
        frames=(),
        mrz=mrz,
        mrz_problem=None,
        name_confirmed=True,
        face=FaceCheck(0.3, 0.5, 0.6),
        face_problem=None,
        liveness=None,
        visual_zone_name=True,
    )
    return replace(exam, **changes)  # type: ignore[arg-type]


def _decide(exam: Examination) -> tuple[Outcome, tuple[Reason, ...], float | None]:
    assert exam.mrz is not None
    name = f"{exam.mrz.secondary_identifier} {exam.mrz.primary_identifier}"
    verdict = decide(
        exam,
        method=VerificationMethod.IN_PERSON,
        declared_name=name,
        declared_birth=exam.mrz.birth_date,
        today=TODAY,
        reused=False,
    )
    return verdict.status, verdict.reasons, verdict.screen_replay_share


def test_a_suspected_screen_replay_goes_to_review_with_its_reason() -> None:
    assert _decide(_exam(screen_replay_share=0.05)) == (Outcome.VERIFIED, (), 0.05)
    flagged = _exam(screen_replay_share=0.8, screen_replay_suspected=True)
    assert _decide(flagged) == (Outcome.REVIEW, (Reason.SCREEN_REPLAY_SUSPECTED,), 0.8)
    # with a rejecting reason, still rejected, both recorded
    rejected = replace(flagged, face=FaceCheck(0.9, 0.5, 0.6))
    status, reasons, _ = _decide(rejected)
    assert status is Outcome.REJECTED
    assert set(reasons) == {Reason.SCREEN_REPLAY_SUSPECTED, Reason.FACE_MISMATCH}
    assert "screen" in explain(Reason.SCREEN_REPLAY_SUSPECTED)
