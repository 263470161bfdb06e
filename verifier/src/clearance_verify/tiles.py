"""C2SP tlog-tiles: paths, tile widths and entry bundles (tiles of height 8, 256 hashes)."""

from __future__ import annotations

from clearance_verify.errors import VerificationFailed
from clearance_verify.merkle import HASH_SIZE

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT


def index_path(index: int) -> str:
    """C2SP tlog-tiles: the index in 3-digit groups, every group but the last prefixed "x"."""
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def tile_path(level: int | None, index: int, width: int) -> str:
    """`tile/<L>/<N>[.p/<W>]`, or `tile/entries/<N>[.p/<W>]` for level None."""
    head = "tile/entries" if level is None else f"tile/{level}"
    tail = "" if width == TILE_WIDTH else f".p/{width}"
    return f"{head}/{index_path(index)}{tail}"


def tiles_at(level: int, size: int) -> list[tuple[int, int]]:
    """(index, width) of every tile at `level` for a tree of `size` leaves: the level holds the
    hashes of tree level 8*level, one per complete subtree of 256**level leaves."""
    count = size >> (TILE_HEIGHT * level)
    full, partial = divmod(count, TILE_WIDTH)
    refs = [(i, TILE_WIDTH) for i in range(full)]
    if partial:
        refs.append((full, partial))
    return refs


def split_hashes(data: bytes, width: int, where: str) -> list[bytes]:
    if len(data) != width * HASH_SIZE:
        raise VerificationFailed(f"{where}: {len(data)} bytes, want {width} hashes of 32 bytes")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def split_bundle(data: bytes, width: int, where: str) -> list[bytes]:
    """C2SP tlog-tiles entry bundle: each entry as a big-endian uint16 length and its bytes."""
    entries, pos = [], 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise VerificationFailed(f"{where}: truncated entry bundle")
        n = int.from_bytes(data[pos : pos + 2], "big")
        if pos + 2 + n > len(data):
            raise VerificationFailed(f"{where}: truncated entry bundle")
        entries.append(data[pos + 2 : pos + 2 + n])
        pos += 2 + n
    if len(entries) != width:
        raise VerificationFailed(f"{where}: {len(entries)} entries, want {width}")
    return entries
