"""Active liveness: the frames show one person turning left, then right, and blinking.

The browser asks the user to turn their head left, then right, and to blink, and sends the
captured frames. Here dlib's 68-point landmarks (iBUG 300-W layout, via face_recognition) give:

- head yaw, as where the nose tip sits between the two ends of the jaw line (0.5 = frontal);
- eye openness, as the eye aspect ratio (Soukupova and Cech, "Real-Time Eye Blink Detection
  using Facial Landmarks", CVWW 2016): vertical over horizontal eyelid distances;
- identity, as the 128-value embedding of every frame, all close to each other.

This is an active challenge only: no passive anti-spoofing model is available offline, so a
good video replay or a mask is not detected. Nothing here claims certification (docs/identity.md).
`assess` is pure over landmarks and embeddings; `observe` is the edge that computes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from clearance.identity.biometrics.face import distance, scaled_for_detection
from clearance.identity.biometrics.facelib import face_recognition

Point = tuple[float, float]


class LivenessReason(StrEnum):
    TOO_FEW_FRAMES = "too_few_frames"
    FACE_MISSING = "face_missing"  # a frame without exactly one face
    NO_LEFT_TURN = "no_left_turn"
    NO_RIGHT_TURN = "no_right_turn"
    WRONG_ORDER = "wrong_order"  # right before left
    NO_BLINK = "no_blink"
    DIFFERENT_PEOPLE = "different_people"


@dataclass(frozen=True, slots=True)
class LivenessParams:
    min_frames: int = 6
    turn: float = 0.14  # yaw ratio away from 0.5 that counts as a turn
    blink_ratio: float = 0.7  # eyes closed: EAR below this share of the frames' median EAR
    same_person: float = 0.6  # dlib's same-person distance between any frame and the first
    mirrored: bool = False  # frames from a mirrored preview: swap left and right


@dataclass(frozen=True, slots=True)
class Observation:
    jaw: tuple[Point, ...]  # 17 points, image left to image right
    nose_tip: tuple[Point, ...]  # 5 points
    left_eye: tuple[Point, ...]  # 6 points each, in the 68-point order
    right_eye: tuple[Point, ...]
    encoding: NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class LivenessResult:
    passed: bool
    reasons: tuple[LivenessReason, ...]
    frames: int
    turned_left: bool
    turned_right: bool
    blinked: bool
    max_identity_distance: float | None
    reference: NDArray[np.float64] | None  # the first frame's embedding, to match the document


def eye_aspect_ratio(eye: Sequence[Point]) -> float:
    """EAR = (|p2-p6| + |p3-p5|) / (2 |p1-p4|), points p1..p6 around the eye."""
    p = np.asarray(eye, dtype=np.float64)
    vertical = np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])
    return float(vertical / (2.0 * max(float(np.linalg.norm(p[0] - p[3])), 1e-6)))


def yaw_ratio(observation: Observation) -> float:
    """0.5 facing the camera; above it the nose moves to the image's right, below to its left."""
    left_x, right_x = observation.jaw[0][0], observation.jaw[-1][0]
    nose_x = float(np.mean([p[0] for p in observation.nose_tip]))
    return (nose_x - left_x) / max(right_x - left_x, 1e-6)


def _turns(yaws: list[float], params: LivenessParams) -> tuple[int | None, int | None]:
    """Index of the first turn to the subject's left, and of the first right turn after it.

    Unmirrored, a person turning to their own left moves their nose to the image's right.
    """
    sign = -1.0 if params.mirrored else 1.0
    lefts = [i for i, y in enumerate(yaws) if sign * (y - 0.5) >= params.turn]
    rights = [i for i, y in enumerate(yaws) if sign * (0.5 - y) >= params.turn]
    first_left = lefts[0] if lefts else None
    if first_left is None:
        return None, rights[0] if rights else None
    later = [i for i in rights if i > first_left]
    return first_left, later[0] if later else (rights[0] if rights else None)


def _blinked(ears: list[float], params: LivenessParams) -> bool:
    """Closed in some frame with open eyes both before and after it."""
    baseline = float(np.median(ears))
    closed = [i for i, e in enumerate(ears) if e < params.blink_ratio * baseline]
    return any(
        any(e >= baseline * 0.9 for e in ears[:i])
        and any(e >= baseline * 0.9 for e in ears[i + 1 :])
        for i in closed
    )


def assess(
    observations: Sequence[Observation | None], params: LivenessParams | None = None
) -> LivenessResult:
    """Pure: one observation per frame, None where the frame did not hold exactly one face."""
    params = params or LivenessParams()
    reasons: list[LivenessReason] = []
    if len(observations) < params.min_frames:
        reasons.append(LivenessReason.TOO_FEW_FRAMES)
    seen = [o for o in observations if o is not None]
    if len(seen) < len(observations):
        reasons.append(LivenessReason.FACE_MISSING)
    if not seen:
        return LivenessResult(
            False, (*reasons,), len(observations), False, False, False, None, None
        )
    left, right = _turns([yaw_ratio(o) for o in seen], params)
    turned_left, turned_right = left is not None, right is not None
    if not turned_left:
        reasons.append(LivenessReason.NO_LEFT_TURN)
    if not turned_right:
        reasons.append(LivenessReason.NO_RIGHT_TURN)
    if left is not None and right is not None and right < left:
        reasons.append(LivenessReason.WRONG_ORDER)
    ears = [(eye_aspect_ratio(o.left_eye) + eye_aspect_ratio(o.right_eye)) / 2 for o in seen]
    blinked = _blinked(ears, params)
    if not blinked:
        reasons.append(LivenessReason.NO_BLINK)
    reference = seen[0].encoding
    spread = max(distance(reference, o.encoding) for o in seen)
    if spread >= params.same_person:
        reasons.append(LivenessReason.DIFFERENT_PEOPLE)
    return LivenessResult(
        passed=not reasons,
        reasons=tuple(reasons),
        frames=len(observations),
        turned_left=turned_left,
        turned_right=turned_right,
        blinked=blinked,
        max_identity_distance=spread,
        reference=reference,
    )


def _points(values: Sequence[tuple[int, int]], scale: float) -> tuple[Point, ...]:
    return tuple((x / scale, y / scale) for x, y in values)


def observe_frame(rgb: NDArray[np.uint8]) -> Observation | None:
    """Landmarks and embedding of the frame's one face; None unless exactly one face."""
    small, scale = scaled_for_detection(rgb)
    boxes = face_recognition.face_locations(small, number_of_times_to_upsample=1, model="hog")
    if len(boxes) != 1:
        return None
    marks = face_recognition.face_landmarks(small, face_locations=boxes, model="large")[0]
    encoding = face_recognition.face_encodings(small, known_face_locations=boxes)[0]
    return Observation(
        jaw=_points(marks["chin"], scale),
        nose_tip=_points(marks["nose_tip"], scale),
        left_eye=_points(marks["left_eye"], scale),
        right_eye=_points(marks["right_eye"], scale),
        encoding=np.asarray(encoding, dtype=np.float64),
    )


def check_liveness(
    frames: Sequence[NDArray[np.uint8]], params: LivenessParams | None = None
) -> LivenessResult:
    return assess([observe_frame(frame) for frame in frames], params)
