"""Hostile uploads (issue 7, item 4): every one a clean 4xx `ClearanceError` within 100 MB; valid
images that smuggle a payload are accepted only as a re-encoded copy without it.

Time per case is measured and printed by bench/fuzz.py (no timing asserts in tests).
"""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageFile

import clearance.identity.biometrics.face  # noqa: F401 - imports face_recognition, as verification does
from clearance.errors import ClearanceError
from clearance.identity.document import LoadedImage, load_image
from clearance.identity.examine import load_all
from tests.security.hostile_images import PAYLOAD, POLYGLOTS, REFUSED, photo, png_bomb
from tests.security.measure import MB, measure

MEMORY_LIMIT = 100 * MB


@pytest.fixture(scope="module", autouse=True)
def decoders_warm() -> None:
    """What a serving worker has done long before a hostile upload arrives: decode an image once.
    The first decode in a process also pays for Pillow's and NumPy's one-time set-up (~20 MB seen
    here), which belongs to no upload; which test comes first in a worker depends on the run."""
    load_image(png_bomb(3530))
    for fmt in ("JPEG", "PNG", "WEBP"):
        load_image(photo(fmt))


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_hostile_upload_is_refused_cleanly_and_cheaply(name: str) -> None:
    build, status = REFUSED[name]
    data = build()
    cost = measure(lambda: load_image(data), (ClearanceError,))
    assert isinstance(cost.outcome, ClearanceError), f"{name} was accepted"
    assert cost.outcome.status == status, cost.outcome
    assert 400 <= cost.outcome.status < 500
    assert cost.peak_bytes < MEMORY_LIMIT, f"{name}: {cost.peak_bytes / MB:.0f} MB"


def test_face_recognition_does_not_leave_pillow_padding_truncated_files() -> None:
    """face_recognition turns LOAD_TRUNCATED_IMAGES on at import; a cut JPEG then decoded as
    grey padding (verify() checks nothing for JPEG). identity/face.py turns it back off."""
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(ClearanceError):
        load_image(REFUSED["jpeg_cut_at_60pct"][0]())


@pytest.mark.parametrize("name", sorted(POLYGLOTS))
def test_polyglot_is_accepted_only_as_a_clean_reencoding(name: str) -> None:
    data = POLYGLOTS[name]()
    assert PAYLOAD in data or b"PolyglotCam" in data
    loaded = load_image(data)
    stored = loaded.reencode()
    assert stored.startswith(b"\xff\xd8\xff")  # JPEG SOI, whatever came in
    for leftover in (PAYLOAD, b"PK\x03\x04", b"%PDF", b"<html>", b"PolyglotCam", b"Exif"):
        assert leftover not in stored, leftover
    with Image.open(io.BytesIO(stored)) as again:
        assert again.format == "JPEG" and again.size == (loaded.width, loaded.height)
        assert not again.getexif() and "comment" not in again.info


def test_a_refused_frame_refuses_the_whole_upload_before_anything_is_kept() -> None:
    """`load_all` decodes everything first; the vault only ever gets `reencode()` output."""
    with pytest.raises(ClearanceError) as refused:
        load_all(photo("JPEG"), photo("PNG"), [photo("WEBP"), REFUSED["pdf_named_jpeg"][0]()])
    assert refused.value.status == 415
    document, selfie, frames = load_all(photo("JPEG"), photo("PNG"), [photo("WEBP")])
    assert all(isinstance(i, LoadedImage) for i in (document, selfie, *frames))


def test_pixel_flood_under_the_pixel_limit_stays_under_100_mb() -> None:
    data = png_bomb(3530)  # 12.46 MP of black, just under the limit, ~36 kB on the wire
    cost = measure(lambda: load_image(data), (ClearanceError,))
    if isinstance(cost.outcome, ClearanceError):
        assert 400 <= cost.outcome.status < 500
    assert cost.peak_bytes < MEMORY_LIMIT, f"{cost.peak_bytes / MB:.0f} MB"
