"""Inputs for the browser test: a US passport with a portrait, a selfie, and a fake camera.

Built from tests/fixtures/identity/faces/collins.jpg (public domain, see its README), the only
face with landmarks the face engineer's tests already rely on. The camera is a YUV4MPEG2 file
(what Chromium's --use-file-for-fake-video-capture plays, looping) of the same face warped to
look turned to its left, to its right, and with its eyes closed, so the landmark-based challenge
(identity/liveness.py) sees the motion it asks for. Nothing here is a real person's document.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from clearance.identity.biometrics.liveness import Observation, observe_frame
from clearance.identity.mrz import DocumentData, DocumentFormat, Sex, compose
from tests.fixtures.identity.synth import render_page

FACES = Path(__file__).parents[1] / "fixtures" / "identity" / "faces"
NAME = ("ROSENTHAL", "ADA MARIE")  # surname, given names: fictional
FPS = 10
# One loop of the fake camera, in frames at FPS: (pose, frames). Every pose lasts at least as long
# as the page's 300 ms between captures, and the page records ~1.8 loops, so every step is seen
# and a left turn is always followed by a right turn.
LOOP = (("front", 4), ("left", 4), ("front", 2), ("right", 4), ("front", 2), ("blink", 4))

Image8 = NDArray[np.uint8]


@dataclass(frozen=True)
class Inputs:
    document: Path
    selfie: Path
    camera: Path
    declared_name: str


def _face() -> Image8:
    small = np.asarray(Image.open(FACES / "collins.jpg").convert("RGB"), dtype=np.uint8)
    return np.asarray(cv2.resize(small, (480, 480), interpolation=cv2.INTER_CUBIC), np.uint8)


def _turned(img: Image8, base: Observation, amount: float) -> Image8:
    """Move the nose sideways by `amount` of the face's width (positive: towards image right),
    a local warp that leaves the jaw line in place: what dlib's yaw estimate looks at."""
    width = base.jaw[-1][0] - base.jaw[0][0]
    nose_x = float(np.mean([p[0] for p in base.nose_tip]))
    nose_y = float(np.mean([p[1] for p in base.nose_tip]))
    eye_y = float(np.mean([p[1] for p in (*base.left_eye, *base.right_eye)]))
    ys, xs = np.mgrid[0 : img.shape[0], 0 : img.shape[1]].astype(np.float32)
    bump = np.exp(-(((xs - nose_x) / (0.3 * width)) ** 2))
    bump *= np.exp(-(((ys - nose_y) / (0.9 * (nose_y - eye_y))) ** 2))
    dx = (amount * width * bump).astype(np.float32)
    return np.asarray(cv2.remap(img, xs - dx, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))


def _blinking(img: Image8, base: Observation) -> Image8:
    """Eyelids closed: each eye painted over with the skin below it and a lash line."""
    out = img.astype(np.float32)
    for eye in (base.left_eye, base.right_eye):
        points = np.asarray(eye, dtype=np.float32)
        centre = points.mean(axis=0)
        width = float(points[:, 0].max() - points[:, 0].min())
        below = img[
            int(centre[1] + width * 0.6) : int(centre[1] + width * 0.9),
            int(centre[0] - width / 2) : int(centre[0] + width / 2),
        ]
        skin = below.reshape(-1, 3).mean(axis=0)
        mask = np.zeros(img.shape[:2], np.uint8)
        cv2.fillPoly(mask, [((points - centre) * [1.3, 2.3] + centre).astype(np.int32)], 255)
        soft = cv2.GaussianBlur(mask, (7, 7), 0).astype(np.float32)[..., None] / 255
        out = out * (1 - soft) + skin * soft
        ends = (tuple(int(v) for v in points[0]), tuple(int(v) for v in points[3]))
        cv2.line(out, ends[0], ends[1], tuple(float(v) * 0.45 for v in skin), 2, cv2.LINE_AA)
    return np.clip(out, 0, 255).astype(np.uint8)


def _y4m(path: Path, frames: list[Image8]) -> None:
    """YUV4MPEG2, 4:2:0 (the layout Chromium's file capture reads), BT.601 via OpenCV."""
    height, width = frames[0].shape[:2]
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())


def _padded(face: Image8) -> Image8:
    """The 480 x 480 face centred in a 640 x 480 picture, as a webcam frames it."""
    return np.asarray(cv2.copyMakeBorder(face, 0, 0, 80, 80, cv2.BORDER_REPLICATE), np.uint8)


def camera_file(path: Path) -> Path:
    face = _face()
    base = observe_frame(face)
    assert base is not None, "the fixture face must be detected"
    poses = {
        "front": face,
        "left": _turned(face, base, 0.3),  # the subject's left: the nose moves to image right
        "right": _turned(face, base, -0.25),
        "blink": _blinking(face, base),
    }
    _y4m(path, [_padded(poses[pose]) for pose, count in LOOP for _ in range(count)])
    return path


def passport(path: Path, today: date) -> Path:
    """A TD3 US passport data page (ICAO 9303-4) with the fixture face as its portrait."""
    number = "583920174"  # digits only: nothing for the OCR to confuse (O/0, I/1)
    data = DocumentData(
        format=DocumentFormat.TD3,
        document_code="P",
        issuing_state="USA",
        nationality="USA",
        primary_identifier=NAME[0],
        secondary_identifier=NAME[1],
        document_number=number,
        birth_date=date(1985, 6, 1),
        sex=Sex.FEMALE,
        expiry_date=today + timedelta(days=3 * 365),
    )
    face = Image.open(FACES / "collins.jpg").convert("RGB")
    portrait = face.crop((26, 0, 214, 240))  # the portrait box's 260:330 aspect
    render_page(compose(data), portrait).save(path, quality=92)
    return path


def inputs(directory: Path, today: date) -> Inputs:
    selfie = directory / "selfie.jpg"
    Image.open(FACES / "collins.jpg").convert("RGB").save(selfie, quality=95)
    return Inputs(
        document=passport(directory / "passport.jpg", today),
        selfie=selfie,
        camera=camera_file(directory / "camera.y4m"),
        declared_name=f"{NAME[1].title()} {NAME[0].title()}",  # as the MRZ writes it
    )
