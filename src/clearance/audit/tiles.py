"""C2SP tlog-tiles: the tree's hashes stored and served as tiles of height 8.

A tile at level L, index N holds up to 256 consecutive hashes of tree level 8*L, starting at
hash 256*N (C2SP tlog-tiles "Merkle Tree"). A tile only ever grows to the right, so a narrower
("partial") tile is a prefix of the wider one. `TileEdge` is the integrator's view of the right
edge of the tree: one partial tile per level, extended as leaves arrive.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from clearance.audit.merkle import EMPTY_ROOT, HASH_SIZE, NodeReader, complete_root, range_hash
from clearance.errors import InvalidInput, NotFound

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_ENTRY_SIZE = 0xFFFF  # entry bundles prefix each entry with a big-endian uint16 length

TileReader = Callable[[int, int], bytes]


@dataclass(frozen=True, slots=True)
class Tile:
    level: int
    index: int
    hashes: bytes

    @property
    def width(self) -> int:
        return len(self.hashes) // HASH_SIZE


@dataclass(frozen=True, slots=True)
class TileRef:
    """A parsed tile path; `level` is None for an entry bundle (`tile/entries/...`)."""

    level: int | None
    index: int
    width: int  # TILE_WIDTH for a full tile


def encode_index(index: int) -> str:
    """C2SP tlog-tiles: N as 3-digit groups, all but the last prefixed with "x"."""
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def tile_path(level: int | None, index: int, width: int = TILE_WIDTH) -> str:
    head = "tile/entries" if level is None else f"tile/{level}"
    tail = "" if width == TILE_WIDTH else f".p/{width}"
    return f"{head}/{encode_index(index)}{tail}"


# At most 18 index digits: a log of 2**63 entries (the stored index is a signed 64-bit integer)
# has fewer than 2**55 tiles per level, so no longer path can name a tile that exists.
_PATH = re.compile(
    r"tile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/){0,5}[0-9]{3})(?:\.p/([0-9]{1,3}))?"
)
MAX_TILE_INDEX = (1 << (63 - TILE_HEIGHT)) - 1


def parse_tile_path(path: str) -> TileRef:
    match = _PATH.fullmatch(path)
    if match is None:
        raise NotFound(f"not a tile path: {path[:80]!r}")
    level_text, index_text, width_text = match.groups()
    width = TILE_WIDTH if width_text is None else int(width_text)
    if not 0 < width < TILE_WIDTH + (width_text is None):
        raise NotFound("partial tile width must be 1..255")
    level = None if level_text == "entries" else int(level_text)
    if level is not None and level > 63:
        raise NotFound("tile level out of range")
    index = int(index_text.replace("x", "").replace("/", ""))
    if index > MAX_TILE_INDEX:
        raise NotFound("tile index out of range")
    return TileRef(level=level, index=index, width=width)


def tiles_in_tree(size: int, level: int) -> tuple[int, int]:
    """(full tiles, width of the partial tile or 0) at tile `level` for a tree of `size`."""
    count = size >> (TILE_HEIGHT * level)
    return count // TILE_WIDTH, count % TILE_WIDTH


def entry_bundle(entries: Sequence[bytes]) -> bytes:
    """C2SP tlog-tiles entry bundle: each entry as a big-endian uint16 length and its bytes."""
    return b"".join(len(e).to_bytes(2, "big") + e for e in entries)


def split_bundle(bundle: bytes) -> list[bytes]:
    entries, pos = [], 0
    while pos < len(bundle):
        if pos + 2 > len(bundle):
            raise InvalidInput("truncated entry bundle")
        n = int.from_bytes(bundle[pos : pos + 2], "big")
        entries.append(bundle[pos + 2 : pos + 2 + n])
        pos += 2 + n
    if pos != len(bundle):
        raise InvalidInput("truncated entry bundle")
    return entries


def split_hashes(data: bytes) -> list[bytes]:
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def tile_node_reader(read_tile: TileReader) -> NodeReader:
    """A `NodeReader` over tiles: a node at level 8L+s is the root of 2**s hashes of tile L."""

    def read(level: int, index: int) -> bytes:
        tile_level, sub = divmod(level, TILE_HEIGHT)
        tile_index, offset = divmod(index << sub, TILE_WIDTH)
        data = read_tile(tile_level, tile_index)
        start, end = offset * HASH_SIZE, (offset + (1 << sub)) * HASH_SIZE
        if len(data) < end:
            raise NotFound(f"hash ({level}, {index}) is not in the stored tree")
        return complete_root(split_hashes(data[start:end]))

    return read


class TileEdge:
    """The right edge of the tree as partial tiles; extends them and the full tiles they fill."""

    def __init__(self, size: int, partial: Mapping[int, bytes]) -> None:
        self.size = size
        self._edges: list[list[bytes]] = []
        level = 0
        while size >> (TILE_HEIGHT * level):
            width = tiles_in_tree(size, level)[1]
            data = partial.get(level, b"")[: width * HASH_SIZE]
            if len(data) != width * HASH_SIZE:
                raise NotFound(f"stored tile at level {level} is shorter than the tree")
            self._edges.append(split_hashes(data))
            level += 1

    @staticmethod
    def partial_tiles(size: int) -> list[tuple[int, int]]:
        """(level, index) of the partial tiles `TileEdge(size, ...)` needs."""
        refs, level = [], 0
        while size >> (TILE_HEIGHT * level):
            full, width = tiles_in_tree(size, level)
            if width:
                refs.append((level, full))
            level += 1
        return refs

    def extend(self, leaves: Sequence[bytes]) -> list[Tile]:
        """Append leaf hashes; return every tile that changed (filled ones and new partials)."""
        changed: dict[tuple[int, int], bytes] = {}
        touched: set[int] = set()
        for leaf in leaves:
            self.size += 1
            level, carry = 0, leaf
            while True:
                if level == len(self._edges):
                    self._edges.append([])
                edge = self._edges[level]
                edge.append(carry)
                touched.add(level)
                if len(edge) < TILE_WIDTH:
                    break
                index = ((self.size >> (TILE_HEIGHT * level)) - 1) // TILE_WIDTH
                changed[(level, index)] = b"".join(edge)
                carry = complete_root(edge)
                self._edges[level] = []
                level += 1
        for level in touched:
            if self._edges[level]:
                index = tiles_in_tree(self.size, level)[0]
                changed[(level, index)] = b"".join(self._edges[level])
        return [Tile(level, index, data) for (level, index), data in changed.items()]

    def root(self) -> bytes:
        """RFC 9162 MTH of the whole tree, read from the edge tiles alone."""
        if self.size == 0:
            return EMPTY_ROOT

        def read(level: int, index: int) -> bytes:
            tile_level, sub = divmod(level, TILE_HEIGHT)
            first = (index << sub) - tiles_in_tree(self.size, tile_level)[0] * TILE_WIDTH
            return complete_root(self._edges[tile_level][first : first + (1 << sub)])

        return range_hash(0, self.size, read)
