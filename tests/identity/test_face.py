"""Face match on the public-domain portraits in tests/fixtures/identity/faces (see README)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageEnhance, ImageOps

from clearance.errors import MultipleFaces, NoFaceFound
from clearance.identity.biometrics.face import (
    Detection,
    FaceThresholds,
    FaceVerdict,
    compare_faces,
    distance,
    judge,
    scaled_for_detection,
    single_face,
)
from clearance.identity.biometrics.facelib import face_recognition
from tests.fixtures.identity.synth import Print, printed, render_page

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


# A TD3 MRZ for the pages below (9303-4 Appendix A); only the portrait matters here.
LINES = (
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
)


def page_with(portrait: Image.Image, ghost: Image.Image | None = None) -> NDArray[np.uint8]:
    return rgb(render_page(LINES, portrait, viz=False, ghost=ghost))


def embedding(image: Image.Image) -> NDArray[np.float64]:
    return single_face(rgb(image), role="selfie").encoding


def as_given(page: NDArray[np.uint8]) -> list[tuple[int, int, int, int]]:
    """What the detector finds on the page as given (the only look before the equalised one)."""
    small, _ = scaled_for_detection(page)
    return list(face_recognition.face_locations(small, number_of_times_to_upsample=1))


def test_independent_photos_of_one_person_match_and_others_do_not() -> None:
    obama, obama2, obama3 = (embedding(load(f"{n}.jpg")) for n in ("obama", "obama2", "obama3"))
    biden = embedding(load("biden.jpg"))
    assert distance(obama, obama2) < 0.5 and distance(obama, obama3) < 0.5
    assert min(distance(o, biden) for o in (obama, obama2, obama3)) >= 0.6


def test_a_faint_portrait_under_a_guilloche_is_found_equalised() -> None:
    """9303-3 §3.9.1.3: guilloches over the print. The detector misses this one as given."""
    page = page_with(printed(load("obama.jpg"), Print.GUILLOCHE, random.Random(3)))
    assert as_given(page) == []
    face = single_face(page, role="document portrait", document=True)
    assert face.detection is Detection.EQUALISED
    assert distance(face.encoding, embedding(load("obama2.jpg"))) < 0.5


def test_a_portrait_under_a_print_pattern_is_embedded_without_it() -> None:
    """Found as given, but embedded as given it looked like another person (>= 0.6)."""
    page = page_with(printed(load("hopper.jpg"), Print.GUILLOCHE, random.Random(4)))
    boxes = as_given(page)
    assert len(boxes) == 1
    small, _ = scaled_for_detection(page)
    raw = np.asarray(face_recognition.face_encodings(small, known_face_locations=boxes)[0])
    selfie = embedding(load("hopper.jpg"))
    assert distance(raw, selfie) >= 0.6
    face = single_face(page, role="document portrait", document=True)
    assert face.detection is Detection.AS_GIVEN and distance(face.encoding, selfie) < 0.5


def test_a_ghost_image_of_the_same_person_is_one_face() -> None:
    hopper = load("hopper.jpg")
    page = page_with(hopper, ghost=printed(hopper, Print.GREY, random.Random(0)))
    face = single_face(page, role="document portrait", document=True)
    assert face.ghosts == 1 and distance(face.encoding, embedding(hopper)) < 0.5
    assert face.box[3] < 300  # the portrait (the larger face), not its ghost at the right
    with pytest.raises(MultipleFaces):
        single_face(page, role="selfie")  # a selfie has no ghosts


def test_another_persons_face_beside_the_portrait_is_refused() -> None:
    ghost = printed(load("collins.jpg"), Print.GREY, random.Random(0))
    page = page_with(load("hopper.jpg"), ghost=ghost)
    with pytest.raises(MultipleFaces, match="more than one person"):
        single_face(page, role="document portrait", document=True)
