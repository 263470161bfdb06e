"""Load an uploaded image safely: the only way document photos, selfies and frames get decoded.

- the type is sniffed from the first bytes, never taken from a filename or Content-Type, and
  must be on an explicit allowlist (JPEG, PNG, WebP);
- the byte size is bounded before anything is parsed, and the pixel count is read from the header
  and bounded before any pixel is decoded (decompression bombs);
- animations are refused; EXIF orientation is applied so phone photos come out upright;
- accepted images are re-encoded (`LoadedImage.reencode`), which drops EXIF (GPS, device) and any
  trailing payload, so the evidence vault never stores the uploaded bytes themselves.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from clearance.errors import ImageTooLarge, UnsupportedImage


class ImageFormat(StrEnum):
    JPEG = "JPEG"
    PNG = "PNG"
    WEBP = "WEBP"


WORK_SIDE = 2400  # the longest side images are decoded to for OCR and face matching


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_bytes: int = 12 * 1024 * 1024
    # 12.5 MP takes a 12 MP phone photo (4000x3000); a pixel flood just under the limit still
    # decodes in under 100 MB (measured: ~85 MB for a 12.5 MP PNG, see `WORK_SIDE`).
    max_pixels: int = 12_500_000
    min_side: int = 64  # smaller than this holds neither a readable MRZ nor a face


@dataclass(frozen=True, slots=True)
class LoadedImage:
    format: ImageFormat  # as sniffed from the content
    rgb: NDArray[np.uint8]  # height x width x 3, upright

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    def reencode(self, quality: int = 90) -> bytes:
        """JPEG without metadata: what may be stored as evidence."""
        out = io.BytesIO()
        Image.fromarray(self.rgb).save(out, format="JPEG", quality=quality)
        return out.getvalue()


def sniff(data: bytes) -> ImageFormat | None:
    """Magic numbers: JPEG (ISO/IEC 10918-1 SOI), PNG (RFC 2083 §3.1), WebP (RIFF....WEBP)."""
    if data.startswith(b"\xff\xd8\xff"):
        return ImageFormat.JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ImageFormat.PNG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ImageFormat.WEBP
    return None


def load_image(data: bytes, limits: ImageLimits | None = None) -> LoadedImage:
    limits = limits or ImageLimits()
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"the image is over {limits.max_bytes // (1024 * 1024)} MiB")
    kind = sniff(data)
    if kind is None:
        raise UnsupportedImage("the file is not a JPEG, PNG or WebP image")
    try:
        # `formats` keeps Pillow from trying any other decoder on these bytes.
        with Image.open(io.BytesIO(data), formats=[kind.value]) as probe:
            _check_header(probe, limits)
            # verify() refuses a cut-off PNG; a cut-off JPEG fails in load() below, as long as
            # Pillow's LOAD_TRUNCATED_IMAGES stays off (biometrics/face.py turns it back off).
            probe.verify()
        with Image.open(io.BytesIO(data), formats=[kind.value]) as image:
            if kind is ImageFormat.JPEG:
                # JPEG decodes straight to a reduced scale (DCT scaling): no full-size copy.
                image.draft("RGB", (WORK_SIDE, WORK_SIDE))
            image.load()
            # Work on at most WORK_SIDE pixels a side before any further copy is made: ample
            # for an MRZ and a face, and it keeps a pixel flood from multiplying in memory.
            image.thumbnail((WORK_SIDE, WORK_SIDE))
            ImageOps.exif_transpose(image, in_place=True)
            upright = image if image.mode == "RGB" else image.convert("RGB")
            rgb = np.asarray(upright, dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own bomb guard (a warning, an error where warnings are errors) fires at a
        # higher count than ours, on headers that claim more pixels than they hold.
        raise ImageTooLarge("the image claims too many pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise UnsupportedImage("the image could not be decoded") from None
    return LoadedImage(format=kind, rgb=rgb)


def _check_header(image: Image.Image, limits: ImageLimits) -> None:
    width, height = image.size
    if width * height > limits.max_pixels:
        raise ImageTooLarge(f"the image is over {limits.max_pixels // 1_000_000} megapixels")
    if min(width, height) < limits.min_side:
        raise UnsupportedImage(f"the image is smaller than {limits.min_side} pixels on a side")
    if getattr(image, "n_frames", 1) > 1:
        raise UnsupportedImage("animated images are not accepted")
