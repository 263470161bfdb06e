"""Hostile uploads, built in code: decompression bombs, pixel floods, disguised formats,
wrong magic bytes, truncations, and polyglots that carry a payload inside a valid image.

Used by tests/security/test_hostile_images.py and bench/fuzz.py.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from functools import cache

from PIL import Image

PAYLOAD = b"<?php system($_GET['c']); ?><script>alert(1)</script>CLEARANCE-POLYGLOT-PAYLOAD"


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


@cache
def photo(fmt: str, width: int = 320, height: int = 240) -> bytes:
    """A small legitimate image with some structure (not one flat colour)."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    return encode(image, fmt, quality=90) if fmt == "JPEG" else encode(image, fmt)


def _chunk(kind: bytes, body: bytes) -> bytes:
    """PNG chunk (RFC 2083 §3.2): length, type, data, CRC-32 over type and data."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, idat: bytes, extra: bytes = b"") -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + extra
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def png_bomb(side: int) -> bytes:
    """A real, complete PNG of side x side black pixels: ~1000:1 compression."""
    packer = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * side)  # filter byte + RGB
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return _png(side, side, idat)


def png_header_claiming(width: int, height: int) -> bytes:
    return _png(width, height, zlib.compress(b"\0" * 64))


def png_chunk_bomb(kind: bytes) -> bytes:
    """A valid small PNG with a zTXt/iCCP chunk that inflates to 256 MiB."""
    inflated = zlib.compressobj(9)
    data = b"".join(inflated.compress(b"\0" * (1 << 20)) for _ in range(256)) + inflated.flush()
    prefix = b"comment\0\0" if kind == b"zTXt" else b"icc\0\0"
    good = photo("PNG")
    return good[:33] + _chunk(kind, prefix + data) + good[33:]  # after the 33-byte IHDR


def jpeg_claiming(width: int, height: int) -> bytes:
    """A valid small JPEG whose SOF header is patched to claim width x height."""
    data = bytearray(photo("JPEG"))
    for marker in (b"\xff\xc0", b"\xff\xc2"):  # baseline / progressive SOF (ITU T.81 B.2.2)
        at = data.find(marker)
        if at >= 0:
            data[at + 5 : at + 9] = struct.pack(">HH", height, width)
            return bytes(data)
    raise AssertionError("no SOF marker in the sample JPEG")


def webp_claiming(width: int, height: int) -> bytes:
    """An extended WebP (VP8X) whose canvas claims width x height (24-bit minus-one fields)."""
    vp8x = (
        bytes([0, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    )
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    body += photo("WEBP")[12:]  # the small image's own VP8 chunk after ours
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fits() -> bytes:
    """A FITS primary header (FITS 4.0 §4.4.1): 2880-byte blocks of 80-column cards."""
    cards = ["SIMPLE  =                    T", "BITPIX  =                    8"]
    cards += ["NAXIS   =                    2", "NAXIS1  =                  100"]
    cards += ["NAXIS2  =                  100", "END"]
    header = "".join(card.ljust(80) for card in cards).ljust(2880).encode("ascii")
    return header + bytes(2880 * 4)


def pdf() -> bytes:
    return (
        b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )


def svg() -> bytes:
    return (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><script>x</script></svg>'
    )


def truncated(fmt: str, fraction: float) -> bytes:
    data = photo(fmt, 640, 480)
    return data[: max(16, int(len(data) * fraction))]


# name -> (builder, expected status); every one must be refused with a 4xx ClearanceError.
REFUSED: dict[str, tuple[Callable[[], bytes], int]] = {
    "png_bomb_64MP": (lambda: png_bomb(8000), 413),
    "png_header_claims_900MP": (lambda: png_header_claiming(30000, 30000), 413),
    "png_header_claims_4G_pixels": (lambda: png_header_claiming(65535, 65535), 413),
    "jpeg_header_claims_4G_pixels": (lambda: jpeg_claiming(65500, 65500), 413),
    "jpeg_header_claims_64MP": (lambda: jpeg_claiming(8000, 8000), 413),
    "webp_canvas_claims_268MP": (lambda: webp_claiming(16383, 16383), 413),
    "png_ztxt_bomb_256MiB": (lambda: png_chunk_bomb(b"zTXt"), 415),
    "png_iccp_bomb_256MiB": (lambda: png_chunk_bomb(b"iCCP"), 415),
    "fits_named_jpeg": (fits, 415),
    "pdf_named_jpeg": (pdf, 415),
    "fits_behind_jpeg_magic": (lambda: b"\xff\xd8\xff\xe0" + fits(), 415),
    "pdf_behind_jpeg_magic": (lambda: b"\xff\xd8\xff\xe0" + pdf(), 415),
    "png_behind_jpeg_magic": (lambda: b"\xff\xd8\xff" + photo("PNG"), 415),
    "jpeg_behind_png_magic": (lambda: b"\x89PNG\r\n\x1a\n" + photo("JPEG"), 415),
    "gif": (lambda: photo("GIF"), 415),
    "bmp": (lambda: photo("BMP"), 415),
    "tiff": (lambda: photo("TIFF"), 415),
    "ico": (lambda: encode(Image.new("RGB", (64, 64)), "ICO"), 415),
    "svg_with_script": (svg, 415),
    "empty": (lambda: b"", 415),
    "jpeg_magic_only": (lambda: b"\xff\xd8\xff", 415),
    "jpeg_cut_at_10pct": (lambda: truncated("JPEG", 0.1), 415),
    "jpeg_cut_at_60pct": (lambda: truncated("JPEG", 0.6), 415),
    "png_cut_at_10pct": (lambda: truncated("PNG", 0.1), 415),
    "png_cut_at_60pct": (lambda: truncated("PNG", 0.6), 415),
    "png_cut_before_iend": (lambda: photo("PNG", 640, 480)[:-12], 415),
    "webp_cut_at_60pct": (lambda: truncated("WEBP", 0.6), 415),
}


def _exif_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PolyglotCam"  # Make
    exif[0x8825] = {1: "N", 2: (59.0, 19.0, 0.0)}  # GPS IFD: latitude
    return exif.tobytes()


# name -> builder; each is a valid image carrying PAYLOAD (or GPS EXIF) that must not survive.
POLYGLOTS: dict[str, Callable[[], bytes]] = {
    "jpeg_then_zip": lambda: photo("JPEG") + b"PK\x03\x04" + PAYLOAD,
    "jpeg_then_pdf": lambda: photo("JPEG") + pdf() + PAYLOAD,
    "jpeg_comment_payload": lambda: encode(
        Image.open(io.BytesIO(photo("JPEG"))), "JPEG", comment=PAYLOAD
    ),
    "jpeg_exif_gps": lambda: encode(
        Image.open(io.BytesIO(photo("JPEG"))), "JPEG", exif=_exif_with_gps() + PAYLOAD
    ),
    "png_text_payload": lambda: (
        photo("PNG")[:33] + _chunk(b"tEXt", b"c\0" + PAYLOAD) + photo("PNG")[33:]
    ),
    "png_then_html": lambda: photo("PNG") + b"<html>" + PAYLOAD,
    "webp_exif_payload": lambda: encode(
        Image.open(io.BytesIO(photo("PNG"))), "WEBP", exif=_exif_with_gps() + PAYLOAD
    ),
}
