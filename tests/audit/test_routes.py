"""The audit HTTP API through a real server: checkpoint, entries, proofs, tiles."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from sigstore._internal.merkle import _hash_children, _hash_leaf
from sqlalchemy.engine import Engine

from clearance.audit import merkle
from clearance.audit.checkpoint import open_checkpoint
from clearance.audit.keys import NoteVerifier
from clearance.audit.routes import audit_app
from clearance.audit.service import AuditLog
from clearance.audit.tiles import split_bundle
from clearance.net.serving import serve_in_thread
from tests.audit.conftest import ORIGIN, entry

SIZE = 600


@pytest.fixture
def base(engine: Engine, audit_log: AuditLog) -> Iterator[str]:
    audit_log.append_many([entry(i) for i in range(SIZE)])
    audit_log.integrate()
    with serve_in_thread(audit_app(engine), lifespan="off") as url:
        yield url


def get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read(), resp.headers.get("cache-control", "")
    except urllib.error.HTTPError as err:
        return err.code, err.read(), ""


def hashes(body: bytes) -> list[bytes]:
    return [base64.b64decode(h) for h in json.loads(body)["hashes"]]


def test_checkpoint_and_proofs(base: str, verifier: NoteVerifier) -> None:
    status, body, _ = get(f"{base}/checkpoint")
    assert status == 200
    checkpoint = open_checkpoint(body.decode(), verifier, ORIGIN)
    assert checkpoint.size == SIZE
    status, body, _ = get(f"{base}/entries/123")
    assert (status, body) == (200, entry(123))
    status, body, _ = get(f"{base}/proof/inclusion?index=123&size={SIZE}")
    leaf = merkle.leaf_hash(entry(123))
    merkle.verify_inclusion(123, SIZE, leaf, hashes(body), checkpoint.root)
    tree = merkle.MemoryTree([entry(i) for i in range(SIZE)])
    status, body, _ = get(f"{base}/proof/consistency?first=77&second={SIZE}")
    merkle.verify_consistency(77, SIZE, tree.root(77), checkpoint.root, hashes(body))


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/entries/600", 404),
        ("/proof/inclusion?index=600", 400),
        ("/proof/inclusion?index=x", 400),
        ("/proof/consistency?first=5&second=601", 400),
        ("/tile/0/003", 404),
        ("/tile/0/002.p/89", 404),
        ("/tile/0/1", 404),
    ],
)
def test_errors(base: str, path: str, status: int) -> None:
    assert get(base + path)[0] == status


def test_tiles_hold_rfc6962_hashes(base: str) -> None:
    """Tiles checked with sigstore-python's RFC 6962 hash functions, not ours."""
    status, tile0, cache = get(f"{base}/tile/0/000")
    assert status == 200 and "immutable" in cache
    assert tile0[:32] == _hash_leaf(entry(0)) and len(tile0) == 256 * 32
    status, partial, cache = get(f"{base}/tile/0/002.p/88")  # 600 = 2 * 256 + 88
    assert status == 200 and "immutable" not in cache
    assert partial[-32:] == _hash_leaf(entry(599))
    level = [tile0[i : i + 32] for i in range(0, len(tile0), 32)]
    while len(level) > 1:
        level = [_hash_children(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    status, tile1, _ = get(f"{base}/tile/1/000.p/2")
    assert tile1[:32] == level[0]
    status, bundle, _ = get(f"{base}/tile/entries/002.p/88")
    assert split_bundle(bundle) == [entry(i) for i in range(512, 600)]
    assert get(f"{base}/tile/entries/001")[1] == b"".join(
        len(entry(i)).to_bytes(2, "big") + entry(i) for i in range(256, 512)
    )
