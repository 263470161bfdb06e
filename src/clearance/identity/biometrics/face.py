"""Face match: exactly one face on the document portrait and on the selfie, then a distance.

dlib's ResNet face embedding (via face_recognition, models from face_recognition_models, all
offline): 128 numbers per face; the Euclidean distance between two embeddings is small for the
same person. dlib documents 0.6 as its same-person threshold (99.38% on LFW). We accept below
`match`, send [match, review) to a person, and reject from `review` up. Not certified for
anything: see docs/identity.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import ImageFile

from clearance.errors import MultipleFaces, NoFaceFound
from clearance.identity.biometrics.facelib import face_recognition

# face_recognition turns on Pillow's process-wide LOAD_TRUNCATED_IMAGES when imported, which
# makes a cut-off JPEG decode as grey padding (JPEG `verify()` checks nothing). Uploads must be
# refused instead (images.load_image), and nothing here uses face_recognition's file loader.
ImageFile.LOAD_TRUNCATED_IMAGES = False

_MAX_SIDE = 800  # HOG detection time grows with pixels; a face needs far fewer


class FaceVerdict(StrEnum):
    MATCH = "match"
    REVIEW = "review"
    MISMATCH = "mismatch"


@dataclass(frozen=True, slots=True)
class FaceThresholds:
    match: float = 0.50  # below: the same person
    review: float = 0.60  # from match up to here: a person looks; at or above: mismatch


@dataclass(frozen=True, slots=True)
class Face:
    box: tuple[int, int, int, int]  # top, right, bottom, left in the given image's pixels
    encoding: NDArray[np.float64]  # 128 values


@dataclass(frozen=True, slots=True)
class FaceComparison:
    distance: float
    verdict: FaceVerdict
    thresholds: FaceThresholds


def scaled_for_detection(rgb: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], float]:
    scale = min(1.0, _MAX_SIDE / max(rgb.shape[:2]))
    if scale == 1.0:
        return np.ascontiguousarray(rgb), 1.0
    size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
    return np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8), scale


def single_face(rgb: NDArray[np.uint8], *, role: str) -> Face:
    """The one face in the image, or NoFaceFound / MultipleFaces naming the role."""
    small, scale = scaled_for_detection(rgb)
    boxes = face_recognition.face_locations(small, number_of_times_to_upsample=1, model="hog")
    if not boxes:
        raise NoFaceFound(f"no face was found on the {role}")
    if len(boxes) > 1:
        raise MultipleFaces(f"more than one face was found on the {role}")
    encoding = face_recognition.face_encodings(small, known_face_locations=boxes)[0]
    top, right, bottom, left = (round(v / scale) for v in boxes[0])
    return Face((top, right, bottom, left), np.asarray(encoding, dtype=np.float64))


def distance(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    return float(np.linalg.norm(a - b))


def judge(value: float, thresholds: FaceThresholds | None = None) -> FaceComparison:
    limits = thresholds or FaceThresholds()
    if value < limits.match:
        verdict = FaceVerdict.MATCH
    elif value < limits.review:
        verdict = FaceVerdict.REVIEW
    else:
        verdict = FaceVerdict.MISMATCH
    return FaceComparison(distance=value, verdict=verdict, thresholds=limits)


def compare_faces(
    portrait: NDArray[np.uint8],
    selfie: NDArray[np.uint8],
    thresholds: FaceThresholds | None = None,
) -> FaceComparison:
    """Document portrait against selfie: each must hold exactly one face."""
    document_face = single_face(portrait, role="document portrait")
    selfie_face = single_face(selfie, role="selfie")
    return judge(distance(document_face.encoding, selfie_face.encoding), thresholds)
