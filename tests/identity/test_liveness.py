"""Liveness: landmark motion (pure, on tracks derived from a real face) and real frames."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clearance.identity.biometrics.liveness import (
    LivenessParams,
    LivenessReason,
    Observation,
    Point,
    assess,
    check_liveness,
    eye_aspect_ratio,
    observe_frame,
    yaw_ratio,
)

FACES = Path(__file__).parents[1] / "fixtures" / "identity" / "faces"


def frame(name: str) -> np.ndarray:  # type: ignore[type-arg]
    return np.asarray(Image.open(FACES / name).convert("RGB"), dtype=np.uint8)


@pytest.fixture(scope="module")
def collins() -> Observation:
    observed = observe_frame(frame("collins.jpg"))
    assert observed is not None
    return observed


@pytest.fixture(scope="module")
def hopper() -> Observation:
    observed = observe_frame(frame("hopper.jpg"))
    assert observed is not None
    return observed


def turned(base: Observation, amount: float) -> Observation:
    """The nose moved by `amount` of the jaw's width: positive is towards the image's right."""
    shift = amount * (base.jaw[-1][0] - base.jaw[0][0])
    return replace(base, nose_tip=tuple((x + shift, y) for x, y in base.nose_tip))


def closed(eye: tuple[Point, ...]) -> tuple[Point, ...]:
    middle = float(np.mean([y for _, y in eye]))
    return tuple((x, middle + (y - middle) * 0.2) for x, y in eye)


def blink(base: Observation) -> Observation:
    return replace(base, left_eye=closed(base.left_eye), right_eye=closed(base.right_eye))


def test_real_face_is_frontal_with_open_eyes(collins: Observation) -> None:
    assert 0.4 < yaw_ratio(collins) < 0.6
    assert eye_aspect_ratio(collins.left_eye) > 0.2
    assert eye_aspect_ratio(blink(collins).left_eye) < 0.7 * eye_aspect_ratio(collins.left_eye)


def test_left_then_right_with_a_blink_passes(collins: Observation) -> None:
    shift = 0.3 - yaw_ratio(collins) + 0.5  # towards a yaw of 0.8 and 0.2
    track = [collins, collins, turned(collins, shift), collins, turned(collins, -shift)]
    track += [collins, blink(collins), collins]
    result = assess(track)
    assert result.passed, result.reasons
    assert result.turned_left and result.turned_right and result.blinked
    assert result.max_identity_distance == 0.0


def test_each_missing_step_is_named(collins: Observation, hopper: Observation) -> None:
    still = assess([collins] * 8)
    assert still.reasons == (
        LivenessReason.NO_LEFT_TURN,
        LivenessReason.NO_RIGHT_TURN,
        LivenessReason.NO_BLINK,
    )
    left, right = turned(collins, 0.3), turned(collins, -0.3)
    reversed_ = assess([collins, right, collins, left, collins, blink(collins), collins])
    assert LivenessReason.WRONG_ORDER in reversed_.reasons
    swapped = assess([collins, left, collins, right, blink(collins), collins, hopper, collins])
    assert swapped.reasons == (LivenessReason.DIFFERENT_PEOPLE,)
    assert assess([collins, None, collins]).reasons[:2] == (
        LivenessReason.TOO_FEW_FRAMES,
        LivenessReason.FACE_MISSING,
    )
    assert not assess([]).passed


def test_mirrored_frames_swap_the_sides(collins: Observation) -> None:
    track = [collins, turned(collins, -0.3), collins, turned(collins, 0.3), collins]
    track += [blink(collins), collins]
    assert LivenessReason.WRONG_ORDER in assess(track).reasons
    assert assess(track, LivenessParams(mirrored=True)).passed


def test_a_replayed_still_photo_fails_on_real_frames() -> None:
    photo = frame("collins.jpg")
    blank = np.full_like(photo, 200)
    result = check_liveness([photo] * 5 + [blank, frame("hopper.jpg")])
    assert not result.passed
    for reason in (
        LivenessReason.FACE_MISSING,
        LivenessReason.NO_LEFT_TURN,
        LivenessReason.NO_BLINK,
        LivenessReason.DIFFERENT_PEOPLE,
    ):
        assert reason in result.reasons
