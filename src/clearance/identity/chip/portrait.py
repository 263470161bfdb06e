"""The portrait inside EF.DG2: an ISO/IEC 19794-5:2005 facial record, its JPEG or JPEG 2000
image extracted and decoded under the same limits as an uploaded photo.

The record (19794-5 §5.4-5.7): a 14-byte header (`FAC\\0`, version `010\\0`, record length,
number of images), then per image a 20-byte facial information block (its length first), 8
bytes per feature point, a 12-byte image information block (image data type 0 = JPEG,
1 = JPEG 2000; width; height), and the image data. ICAO 9303-9 §3.9 names JPEG and JPEG 2000
as the formats a chip may hold.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import StrEnum

from PIL import Image, UnidentifiedImageError

from clearance.errors import ChipFormatError, ImageTooLarge, UnsupportedImage
from clearance.identity.document import ImageLimits, LoadedImage, load_image

_HEADER = 14
_FACIAL_INFO = 20
_FEATURE_POINT = 8
_IMAGE_INFO = 12


class PortraitFormat(StrEnum):
    JPEG = "jpeg"
    JPEG2000 = "jpeg2000"


@dataclass(frozen=True, slots=True)
class Portrait:
    format: PortraitFormat
    width: int  # as the record declares it
    height: int
    image: bytes  # the encoded image as the chip holds it


def facial_record(record: bytes) -> Portrait:
    """The first image of an ISO/IEC 19794-5 record; every length checked against the bytes."""
    what = "the DG2 facial record"
    if len(record) < _HEADER + _FACIAL_INFO + _IMAGE_INFO:
        raise ChipFormatError(f"{what} is truncated", reason="truncated")
    if record[:4] != b"FAC\x00":
        raise ChipFormatError(f"{what} is not ISO/IEC 19794-5 (no FAC)", reason="not_19794_5")
    if record[4:8] != b"010\x00":
        raise ChipFormatError(f"{what} is not version 010 of 19794-5", reason="version")
    length = int.from_bytes(record[8:12], "big")
    if length != len(record):
        raise ChipFormatError(
            f"{what} declares {length} bytes, holds {len(record)}", reason="length"
        )
    if int.from_bytes(record[12:14], "big") < 1:
        raise ChipFormatError(f"{what} holds no image", reason="no_portrait")
    pos = _HEADER
    block = int.from_bytes(record[pos : pos + 4], "big")
    points = int.from_bytes(record[pos + 4 : pos + 6], "big")
    info = pos + _FACIAL_INFO + points * _FEATURE_POINT
    start = info + _IMAGE_INFO
    if block < start - pos or pos + block > len(record):
        raise ChipFormatError(f"{what} has a facial block of {block} bytes", reason="length")
    kind = record[info + 1]
    width = int.from_bytes(record[info + 2 : info + 4], "big")
    height = int.from_bytes(record[info + 4 : info + 6], "big")
    image = record[start : pos + block]
    if kind == 0 and image.startswith(b"\xff\xd8\xff"):
        return Portrait(PortraitFormat.JPEG, width, height, image)
    if kind == 1 and image.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):
        return Portrait(PortraitFormat.JPEG2000, width, height, image)
    raise ChipFormatError(f"{what}'s image is neither JPEG nor JPEG 2000", reason="image_type")


def decode(portrait: Portrait, limits: ImageLimits | None = None) -> LoadedImage:
    """The portrait as pixels. A JPEG goes through `load_image`; a JPEG 2000 (which that
    allowlist does not take) is decoded here under the same byte and pixel limits, by Pillow's
    JPEG 2000 decoder alone, then handed to `load_image` as a lossless PNG."""
    limits = limits or ImageLimits()
    try:
        if portrait.format is PortraitFormat.JPEG:
            return load_image(portrait.image, limits)
        return load_image(_jpeg2000_as_png(portrait.image, limits), limits)
    except (ImageTooLarge, UnsupportedImage) as exc:
        raise ChipFormatError(f"the DG2 portrait: {exc.detail}", reason="portrait") from None


def _jpeg2000_as_png(data: bytes, limits: ImageLimits) -> bytes:
    if len(data) > limits.max_bytes:
        raise ImageTooLarge("the image is too large")
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG2000"]) as image:
            width, height = image.size
            if width * height > limits.max_pixels:
                raise ImageTooLarge("the image claims too many pixels")
            image.load()
            out = io.BytesIO()
            image.convert("RGB").save(out, format="PNG")
            return out.getvalue()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge("the image claims too many pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise UnsupportedImage("the JPEG 2000 image could not be decoded") from None
