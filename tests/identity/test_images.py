"""Safe image loading: allowlist by content, byte and pixel limits, re-encoding."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from clearance.errors import ImageTooLarge, InvalidInput, UnsupportedImage
from clearance.identity.document import ImageFormat, ImageLimits, load_image, sniff


def _encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_allowed_formats_load_upright_as_rgb(fmt: str) -> None:
    data = _encode(Image.new("RGB", (120, 80), (200, 10, 10)), fmt)
    loaded = load_image(data)
    assert loaded.format is ImageFormat(fmt)
    assert (loaded.width, loaded.height) == (120, 80)
    assert loaded.rgb.shape == (80, 120, 3) and loaded.rgb.dtype == np.uint8


def test_type_comes_from_content_not_from_a_claim() -> None:
    assert sniff(b"GIF89a" + b"\0" * 20) is None
    gif = _encode(Image.new("RGB", (100, 100)), "GIF")
    with pytest.raises(UnsupportedImage, match="not a JPEG"):
        load_image(gif)
    with pytest.raises(UnsupportedImage):
        load_image(b"%PDF-1.7\n" + b"0" * 100)
    assert UnsupportedImage.status == 415 and issubclass(UnsupportedImage, InvalidInput)


def test_truncated_or_corrupt_images_are_refused_cleanly() -> None:
    data = _encode(Image.new("RGB", (300, 300), (1, 2, 3)), "PNG")
    with pytest.raises(UnsupportedImage, match="decoded"):
        load_image(data[: len(data) // 2])
    with pytest.raises(UnsupportedImage):
        load_image(b"\xff\xd8\xff" + b"garbage" * 50)


def test_byte_limit_is_checked_before_parsing() -> None:
    with pytest.raises(ImageTooLarge):
        load_image(b"\xff\xd8\xff" + b"\0" * 2000, ImageLimits(max_bytes=1000))


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge canvas: a decompression bomb's shape."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [8000, 30000])
def test_pixel_limit_is_checked_from_the_header(side: int) -> None:
    with pytest.raises(ImageTooLarge):
        load_image(_png_claiming(side, side))


def test_tiny_and_animated_images_are_refused() -> None:
    with pytest.raises(UnsupportedImage, match="smaller"):
        load_image(_encode(Image.new("RGB", (20, 20)), "PNG"))
    frames = [Image.new("RGB", (100, 100), (i * 40, 0, 0)) for i in range(3)]
    animated = _encode(frames[0], "WEBP", save_all=True, append_images=frames[1:])
    with pytest.raises(UnsupportedImage, match="animated"):
        load_image(animated)


def test_exif_orientation_is_applied_and_metadata_dropped_on_reencode() -> None:
    image = Image.new("RGB", (200, 100), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees clockwise
    exif[0x010F] = "PhoneMaker"
    loaded = load_image(_encode(image, "JPEG", exif=exif.tobytes()))
    assert (loaded.width, loaded.height) == (100, 200)
    stored = loaded.reencode()
    with Image.open(io.BytesIO(stored)) as again:
        assert again.format == "JPEG"
        assert not again.getexif()
