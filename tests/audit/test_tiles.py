"""C2SP tlog-tiles: paths, bundles, and tiles built incrementally against a full tree."""

from __future__ import annotations

import random

import pytest

from clearance.audit import merkle
from clearance.audit.tiles import (
    TILE_WIDTH,
    Tile,
    TileEdge,
    TileRef,
    entry_bundle,
    parse_tile_path,
    split_bundle,
    tile_node_reader,
    tile_path,
)
from clearance.errors import NotFound


@pytest.mark.parametrize(
    ("ref", "path"),
    [
        (TileRef(0, 0, 256), "tile/0/000"),
        (TileRef(1, 1234067, 256), "tile/1/x001/x234/067"),  # the C2SP example
        (TileRef(2, 5, 7), "tile/2/005.p/7"),
        (TileRef(None, 1000, 255), "tile/entries/x001/000.p/255"),
    ],
)
def test_tile_paths(ref: TileRef, path: str) -> None:
    assert tile_path(ref.level, ref.index, ref.width) == path
    assert parse_tile_path(path) == ref


@pytest.mark.parametrize(
    "path", ["tile/0/1", "tile/0/x1/000", "tile/0/000.p/0", "tile/0/000.p/256", "tile/64/000",
             "tile/0/000/", "tile/-1/000", "tile/0/0000"]
)  # fmt: skip
def test_bad_tile_paths(path: str) -> None:
    with pytest.raises(NotFound):
        parse_tile_path(path)


def test_entry_bundle_roundtrip() -> None:
    data = [b"a", b"", b"x" * 300]
    bundle = entry_bundle(data)
    assert bundle[:3] == b"\x00\x01a"
    assert split_bundle(bundle) == data


def test_tiles_grown_in_random_batches_match_the_full_tree() -> None:
    rng = random.Random(7)
    size = 3 * TILE_WIDTH * TILE_WIDTH // 2 + 77  # three tile levels, partial everywhere
    tree = merkle.MemoryTree()
    stored: dict[tuple[int, int], bytes] = {}
    edge = TileEdge(0, {})
    while tree.size < size:
        batch = [merkle.leaf_hash(rng.randbytes(8)) for _ in range(rng.randint(1, 700))]
        for h in batch:
            tree.append_hash(h)
        for tile in edge.extend(batch):
            previous = stored.get((tile.level, tile.index), b"")
            assert tile.hashes.startswith(previous)  # tiles only grow
            stored[(tile.level, tile.index)] = tile.hashes
        assert edge.root() == tree.root()
        # A fresh edge loaded from the stored partial tiles continues the same tree.
        partial = {lvl: stored[(lvl, i)] for lvl, i in TileEdge.partial_tiles(edge.size)}
        edge = TileEdge(edge.size, partial)
        assert edge.root() == tree.root()

    def read_tile(level: int, index: int) -> bytes:
        return stored.get((level, index), b"")

    reader = tile_node_reader(read_tile)
    for _ in range(200):
        n = rng.randint(1, tree.size)
        i = rng.randrange(n)
        assert merkle.inclusion_proof(i, n, reader) == merkle.inclusion_proof(i, n, tree.read)
        m = rng.randint(0, n)
        assert merkle.consistency_proof(m, n, reader) == merkle.consistency_proof(m, n, tree.read)
    # Every full level-0 tile is exactly the 256 leaf hashes it covers.
    assert Tile(0, 3, stored[(0, 3)]).width == TILE_WIDTH
    assert stored[(0, 3)] == b"".join(tree.levels[0][3 * TILE_WIDTH : 4 * TILE_WIDTH])
    assert stored[(1, 0)][:32] == tree.read(8, 0)


def test_edge_refuses_short_stored_tiles() -> None:
    with pytest.raises(NotFound):
        TileEdge(5, {0: b"\x00" * 32 * 4})
