"""Face match: exactly one face on the document portrait and on the selfie, then a distance.

dlib's ResNet face embedding (via face_recognition, models from face_recognition_models, all
offline): 128 numbers per face; the Euclidean distance between two embeddings is small for the
same person. dlib documents 0.6 as its same-person threshold (99.38% on LFW). We accept below
`match`, send [match, review) to a person, and reject from `review` up. Not certified for
anything: see docs/identity.md.

A document portrait is often not a colour photo: ICAO 9303-3 §3.9.1.3 allows greyscale,
dithering, a removed background and guilloches printed over it, and many documents add a faint
"ghost" copy. dlib's HOG detector misses a faint portrait under a fine guilloche, so when the
image as given shows no face it is looked at again equalised (`equalised`: grey, the fine
print pattern smoothed, CLAHE) and upsampled twice. Several faces on a document are accepted
only when they are one person (`document=True`: the portrait and its ghost copies), and the
largest is the portrait; a face whose box is dominated by the print pattern is embedded on the
equalised image. No second detector is used: the opencv wheel we ship holds no Haar
cascades, and dlib's CNN detector (in face_recognition_models) takes 5-15 s a page here.
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
# The equalised second look: a blur of ~1 px sigma removes guilloche and line-screen patterns a
# few pixels wide (9303-3 §3.9.1.3) but keeps a face's features at this scale; CLAHE then
# stretches a faint portrait's contrast locally. Chosen on the bench's tune seeds.
_PATTERN_SIGMA = 1.2
_CLAHE = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
# Fine detail over the face's contrast above which a print pattern dominates the face box:
# colour and grey prints scored 0.07-0.28 on the tune pages, faint prints under a guilloche up
# to 0.86.
_PATTERN_SCORE = 0.32
# Faces on one document closer than dlib's same-person distance are one person: the portrait
# and its ghost copies. This accepts nothing by itself: the portrait must still match the selfie.
_GHOST_DISTANCE = 0.6


class FaceVerdict(StrEnum):
    MATCH = "match"
    REVIEW = "review"
    MISMATCH = "mismatch"


@dataclass(frozen=True, slots=True)
class FaceThresholds:
    match: float = 0.50  # below: the same person
    review: float = 0.60  # from match up to here: a person looks; at or above: mismatch


class Detection(StrEnum):
    """Which look found the face: the image as given, or the equalised second look."""

    AS_GIVEN = "as_given"
    EQUALISED = "equalised"


@dataclass(frozen=True, slots=True)
class Face:
    box: tuple[int, int, int, int]  # top, right, bottom, left in the given image's pixels
    encoding: NDArray[np.float64]  # 128 values
    detection: Detection = Detection.AS_GIVEN
    ghosts: int = 0  # further faces of the same person on a document (its ghost images)


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


def equalised(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Grey, the fine print pattern smoothed, local contrast stretched (CLAHE), as RGB."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    grey = _CLAHE.apply(cv2.GaussianBlur(grey, (0, 0), _PATTERN_SIGMA))
    return np.ascontiguousarray(np.stack([grey] * 3, axis=-1))


def _detect(
    small: NDArray[np.uint8],
) -> tuple[Detection, NDArray[np.uint8], list[tuple[int, int, int, int]]]:
    """The first look that finds a face: as given (upsampled once), then equalised (twice)."""
    boxes = face_recognition.face_locations(small, number_of_times_to_upsample=1, model="hog")
    if boxes:
        return Detection.AS_GIVEN, small, boxes
    flat = equalised(small)
    boxes = face_recognition.face_locations(flat, number_of_times_to_upsample=2, model="hog")
    return Detection.EQUALISED, flat, boxes


def patterned(rgb: NDArray[np.uint8], box: tuple[int, int, int, int]) -> bool:
    """The face box is dominated by a fine print pattern (a guilloche, a line screen): its
    detail finer than `_PATTERN_SIGMA` is large against the face's own contrast."""
    top, right, bottom, left = box
    grey = cv2.cvtColor(rgb[max(top, 0) : bottom, max(left, 0) : right], cv2.COLOR_RGB2GRAY)
    if grey.size == 0:
        return False
    grey = grey.astype(np.float32)
    smooth = cv2.GaussianBlur(grey, (0, 0), _PATTERN_SIGMA)
    return float(np.abs(grey - smooth).mean()) > _PATTERN_SCORE * (float(smooth.std()) + 1e-6)


def _area(box: tuple[int, int, int, int]) -> int:
    top, right, bottom, left = box
    return (bottom - top) * (right - left)


def _encode(
    small: NDArray[np.uint8], image: NDArray[np.uint8], box: tuple[int, int, int, int]
) -> NDArray[np.float64]:
    """A printed face's embedding: on the equalised image where the pattern dominates the print
    (the embedding of a face under a guilloche, taken as given, drifted 0.2-0.3 on the tune
    pages), otherwise on the image the face was found in."""
    if image is small and patterned(small, box):
        image = equalised(small)
    found = face_recognition.face_encodings(image, known_face_locations=[box])[0]
    return np.asarray(found, dtype=np.float64)


def single_face(rgb: NDArray[np.uint8], *, role: str, document: bool = False) -> Face:
    """The one face in the image, or NoFaceFound / MultipleFaces naming the role.

    `document`: a printed portrait. Copies of it are expected (ghost images): several faces are
    one face when every one is within `_GHOST_DISTANCE` of the largest, which is the portrait
    (a different person's face beside it is still MultipleFaces); and a face under a print
    pattern is embedded on the equalised image."""
    small, scale = scaled_for_detection(rgb)
    detection, image, boxes = _detect(small)
    if not boxes:
        raise NoFaceFound(f"no face was found on the {role}")
    if len(boxes) > 1 and not document:
        raise MultipleFaces(f"more than one face was found on the {role}")
    boxes.sort(key=_area, reverse=True)
    if document:
        encodings = [_encode(small, image, box) for box in boxes]
    else:
        encodings = [face_recognition.face_encodings(image, known_face_locations=boxes[:1])[0]]
    main = np.asarray(encodings[0], dtype=np.float64)
    if any(distance(main, e) >= _GHOST_DISTANCE for e in encodings[1:]):
        raise MultipleFaces(f"more than one person's face was found on the {role}")
    top, right, bottom, left = (round(v / scale) for v in boxes[0])
    return Face((top, right, bottom, left), main, detection, len(boxes) - 1)


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
    document_face = single_face(portrait, role="document portrait", document=True)
    selfie_face = single_face(selfie, role="selfie")
    return judge(distance(document_face.encoding, selfie_face.encoding), thresholds)
