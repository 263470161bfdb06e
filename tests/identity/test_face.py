"""Face match on the public-domain portraits in tests/fixtures/identity/faces (see README)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageEnhance, ImageOps

from clearance.errors import MultipleFaces, NoFaceFound
from clearance.identity.biometrics.face import (
    FaceThresholds,
    FaceVerdict,
    compare_faces,
    judge,
    single_face,
)

FACES = Path(__file__).parents[1] / "fixtures" / "identity" / "faces"


def load(name: str) -> Image.Image:
    return Image.open(FACES / name).convert("RGB")


def rgb(image: Image.Image) -> NDArray[np.uint8]:
    return np.asarray(image, dtype=np.uint8)


def variant(image: Image.Image) -> Image.Image:
    """Another 'photo' of the same face: larger, brighter, mirrored, re-cropped."""
    bigger = image.resize((image.width * 3 // 2, image.height * 3 // 2))
    brighter = ImageEnhance.Brightness(ImageOps.mirror(bigger)).enhance(1.25)
    return brighter.crop((10, 5, brighter.width - 5, brighter.height - 10))


def test_same_person_matches_and_different_people_do_not() -> None:
    collins, hopper = load("collins.jpg"), load("hopper.jpg")
    same = compare_faces(rgb(collins), rgb(variant(collins)))
    different = compare_faces(rgb(collins), rgb(hopper))
    assert same.verdict is FaceVerdict.MATCH and same.distance < 0.5
    assert different.verdict is FaceVerdict.MISMATCH and different.distance >= 0.6


def test_exactly_one_face_is_required() -> None:
    blank = np.full((200, 200, 3), 230, dtype=np.uint8)
    with pytest.raises(NoFaceFound, match="selfie"):
        single_face(blank, role="selfie")
    a, b = load("collins.jpg"), load("hopper.jpg").resize((240, 240))
    both = Image.new("RGB", (a.width + b.width, max(a.height, b.height)))
    both.paste(a, (0, 0))
    both.paste(b, (a.width, 0))
    with pytest.raises(MultipleFaces, match="document portrait"):
        single_face(rgb(both), role="document portrait")


def test_thresholds_and_review_band() -> None:
    limits = FaceThresholds(match=0.5, review=0.6)
    assert judge(0.49, limits).verdict is FaceVerdict.MATCH
    assert judge(0.5, limits).verdict is FaceVerdict.REVIEW
    assert judge(0.59, limits).verdict is FaceVerdict.REVIEW
    assert judge(0.6, limits).verdict is FaceVerdict.MISMATCH
