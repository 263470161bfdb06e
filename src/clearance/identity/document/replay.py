"""Screen replay: a document page photographed off a display (a presentation attack).

A display builds every pixel from red, green and blue sub-pixels side by side (or in another
fixed layout), with black matrix between them. A camera photographing it samples that lattice
at a pitch of its own, and the two beat: moire. Because the three sub-pixels of a pixel sit at
different places, the beat of each colour has a different phase, and the moire is a rainbow:
bands whose red, green and blue are shifted along the band, covering the whole screen, the
blank paper as much as the print.

Ink on paper cannot do that. Wherever a print varies (text, a guilloche, a portrait's line
screen), every colour channel varies at the same places; at any spatial frequency the three
channels' Fourier coefficients are in phase (collinear, up to sign). So the check, per tile of
the page (64 x 64 pixels): at each frequency of the tile's spectrum, the part of the three
channels' coefficients that is *not* collinear, |Re z x Im z| for z = (R, G, B) there (zero for
any ink, whatever its colour; for RGB stripes 120 degrees apart, half the power). A tile shows
a rainbow pattern when that, at its strongest frequency, has at least `MIN_AMPLITUDE` grey levels
and holds at least `MIN_SHARE_OF_POWER` of the tile's whole varying power (JPEG's independent
quantisation of luma and chroma leaves some non-collinear power at the edges of print, but a
small share of the print's own). A page is suspected when at least `SUSPECT_SHARE` of its tiles
do: print covers a part of a page, a screen's moire all of it.

The constants were chosen on the tune seeds of bench/identity.py (10000-); what this does not
see: a page filling a small part of the photo, displays too fine for the camera to resolve any
beat, a photo scaled down hard before upload, and a print whose fine lines the camera's own
Bayer mosaic turns into false colour (a genuine page could then be sent to review: a person
looks, nothing is refused).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

TILE = 64
STEP = 48  # tiles overlap by a quarter
MAX_TILES_PER_AXIS = 40  # a larger photo is sampled on a coarser grid of tiles, not scaled
MIN_AMPLITUDE = 0.75  # grey levels of the strongest rainbow frequency
MIN_SHARE_OF_POWER = 0.001  # of the tile's power at all frequencies outside the lowest
PROMINENCE = 10.0  # the peak over the median of the tile's rainbow power: a tone, not noise
SUSPECT_SHARE = 0.3  # of the page's tiles
LOWEST = 2.5  # frequencies below this many cycles per tile are shading, not a pattern


@dataclass(frozen=True, slots=True)
class ReplayCheck:
    share: float  # share of the page's tiles showing a rainbow pattern
    tiles: int
    suspected: bool


def _starts(length: int) -> list[int]:
    if length < TILE:
        return []
    count = (length - TILE) // STEP + 1
    if count > MAX_TILES_PER_AXIS:
        last = MAX_TILES_PER_AXIS - 1
        return [round(i * (length - TILE) / last) for i in range(MAX_TILES_PER_AXIS)]
    return [i * STEP for i in range(count)]


def _window_and_band() -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    hann = np.hanning(TILE).astype(np.float32)
    fy = np.fft.fftfreq(TILE)[:, None]
    fx = np.fft.rfftfreq(TILE)[None, :]
    return np.outer(hann, hann), np.hypot(fy, fx) * TILE >= LOWEST


# The ring of frequencies around a peak its prominence is measured against: 2 to 4 bins away.
_RING = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5) if max(abs(dy), abs(dx)) >= 2]


_WINDOW, _BAND = _window_and_band()
_NORM = 2 / float(_WINDOW.sum())  # a coefficient's magnitude -> the sinusoid's amplitude


def rainbow_tiles(rgb: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """For each tile (row-major over the grid), whether it shows a rainbow periodic pattern."""
    image = np.asarray(rgb, dtype=np.float32)
    rows, cols = _starts(image.shape[0]), _starts(image.shape[1])
    found = []
    for top in rows:
        strip = np.stack([image[top : top + TILE, left : left + TILE] for left in cols])
        strip -= strip.mean(axis=(1, 2), keepdims=True)
        strip *= _WINDOW[None, :, :, None]
        spectrum = np.fft.rfft2(strip, axes=(1, 2))
        rainbow = np.linalg.norm(np.cross(spectrum.real, spectrum.imag), axis=-1)
        rainbow[:, ~_BAND] = 0
        power = (np.abs(spectrum) ** 2).sum(axis=-1)
        power[:, ~_BAND] = 0
        flat = rainbow.reshape(len(cols), -1)
        at = flat.argmax(axis=1)
        peak = flat[np.arange(len(cols)), at]
        typical = _around(rainbow, *np.unravel_index(at, rainbow.shape[1:]))
        total = power.reshape(len(cols), -1).sum(axis=1)
        found.append(
            (np.sqrt(peak) * _NORM >= MIN_AMPLITUDE)
            & (peak >= MIN_SHARE_OF_POWER * total)
            & (peak >= PROMINENCE * typical)
        )
    return np.concatenate(found) if found else np.zeros(0, dtype=bool)


def _around(
    rainbow: NDArray[np.float32], rows: NDArray[np.intp], cols: NDArray[np.intp]
) -> NDArray[np.float32]:
    """The mean rainbow power on the ring around each tile's peak (noise is smooth across it,
    a moire's tone is not)."""
    width = rainbow.shape[2]
    tile = np.arange(len(rows))
    sums = np.zeros(len(rows), dtype=np.float32)
    counts = np.zeros(len(rows), dtype=np.float32)
    for dy, dx in _RING:
        y, x = (rows + dy) % TILE, cols + dx
        valid = (x >= 0) & (x < width)
        value = rainbow[tile, y, np.clip(x, 0, width - 1)]
        sums += np.where(valid, value, 0)
        counts += valid
    return np.asarray(sums / np.maximum(counts, 1), dtype=np.float32)


def screen_replay(rgb: NDArray[np.uint8]) -> ReplayCheck:
    """Whether the page looks photographed off a display (see the module's docstring)."""
    tiles = rainbow_tiles(rgb)
    share = float(tiles.mean()) if tiles.size else 0.0
    return ReplayCheck(share=share, tiles=int(tiles.size), suspected=share >= SUSPECT_SHARE)
