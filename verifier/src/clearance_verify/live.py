"""A live log over HTTP (urllib only): its checkpoint, tiles, proofs, and a monitor's memory.

Endpoints read, relative to the log's URL (Clearance serves them under /audit):
`checkpoint`, `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]` (C2SP tlog-tiles),
`entries/<i>`, `proof/inclusion?index=&size=`, `proof/consistency?first=&second=`.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearance_verify.errors import CannotCheck, VerificationFailed
from clearance_verify.merkle import leaf_hash, tree_root, verify_consistency, verify_inclusion
from clearance_verify.note import Checkpoint, VerifiedCheckpoint, Vkey, verify_checkpoint
from clearance_verify.tiles import TILE_WIDTH, split_bundle, split_hashes, tile_path, tiles_at

MAX_RESPONSE = 64 << 20  # bytes; a hostile server cannot make us hold more per request


class LogClient:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def get(self, path: str) -> bytes:
        url = f"{self.url}/{path}"
        request = urllib.request.Request(url, headers={"User-Agent": "clearance-verify"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                data: bytes = response.read(MAX_RESPONSE + 1)
        except urllib.error.HTTPError as exc:
            raise CannotCheck(f"GET {url}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise CannotCheck(f"GET {url}: {getattr(exc, 'reason', exc)}") from exc
        if len(data) > MAX_RESPONSE:
            raise CannotCheck(f"GET {url}: response larger than {MAX_RESPONSE} bytes")
        return data

    def checkpoint(self) -> str:
        try:
            return self.get("checkpoint").decode()
        except UnicodeDecodeError as exc:
            raise VerificationFailed("the served checkpoint is not UTF-8") from exc

    def proof(self, path: str) -> list[bytes]:
        try:
            hashes = json.loads(self.get(path))["hashes"]
            return [base64.b64decode(h, validate=True) for h in hashes]
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise VerificationFailed(f"GET {path}: not a proof") from exc


@dataclass(frozen=True, slots=True)
class LogReport:
    checkpoint: VerifiedCheckpoint
    entries: int  # entries hashed from the entry bundles
    tiles: int  # hash tiles checked
    spot_checked: tuple[int, ...]  # indices whose served inclusion proof verified
    extends: Checkpoint | None  # the saved checkpoint this log was shown to extend


Progress = Callable[[str], None]


def check_log(
    client: LogClient,
    log: Vkey,
    witnesses: Sequence[Vkey] = (),
    quorum: int = 0,
    *,
    saved: str | None = None,
    samples: int = 8,
    progress: Progress | None = None,
) -> LogReport:
    """Verify the served checkpoint, recompute its root from every entry and tile, spot-check
    served inclusion proofs, and check consistency with a checkpoint kept earlier."""
    verified = verify_checkpoint(client.checkpoint(), log, witnesses, quorum)
    checkpoint = verified.checkpoint
    leaves = _leaves(client, checkpoint.size)
    tiles = _check_tiles(client, checkpoint.size, leaves)
    if tree_root(leaves) != checkpoint.root:
        raise VerificationFailed(
            f"the root recomputed from the {checkpoint.size} entries is not the checkpoint's root"
        )
    if progress:
        progress(f"recomputed the root from {len(leaves)} entries and {tiles} tiles")
    checked = _spot_check(client, checkpoint, leaves, samples)
    extends = None
    if saved is not None:
        extends = _check_saved(client, checkpoint, leaves, saved, log)
    return LogReport(verified, len(leaves), tiles, checked, extends)


def _leaves(client: LogClient, size: int) -> list[bytes]:
    """Leaf hashes of every entry, from the entry bundles, each checked against level-0 tiles."""
    leaves: list[bytes] = []
    for index, width in tiles_at(0, size):
        where = tile_path(None, index, width)
        entries = split_bundle(client.get(where), width, where)
        hashes = [leaf_hash(e) for e in entries]
        where = tile_path(0, index, width)
        tile = split_hashes(client.get(where), width, where)
        for offset, (ours, theirs) in enumerate(zip(hashes, tile, strict=True)):
            if ours != theirs:
                raise VerificationFailed(
                    f"entry {index * TILE_WIDTH + offset}: its leaf hash is not the one in {where}"
                )
        leaves.extend(hashes)
    return leaves


def _check_tiles(client: LogClient, size: int, leaves: list[bytes]) -> int:
    """Each higher tile's hashes must be the roots of the full tiles below it (C2SP tlog-tiles)."""
    below, level, checked = leaves, 1, len(tiles_at(0, size))
    while size >> (8 * level):
        hashes: list[bytes] = []
        for index, width in tiles_at(level, size):
            where = tile_path(level, index, width)
            hashes.extend(split_hashes(client.get(where), width, where))
            checked += 1
        for j, h in enumerate(hashes):
            if h != tree_root(below[j * TILE_WIDTH : (j + 1) * TILE_WIDTH]):
                tile = tile_path(level, j // TILE_WIDTH, TILE_WIDTH)
                raise VerificationFailed(f"{tile}: hash {j % TILE_WIDTH} is not the tiles below")
        below, level = hashes, level + 1
    return checked


def _spot_check(
    client: LogClient, checkpoint: Checkpoint, leaves: list[bytes], samples: int
) -> tuple[int, ...]:
    size = checkpoint.size
    if size == 0:
        return ()
    picks = {0, size - 1, *random.sample(range(size), min(samples, size))}
    for i in sorted(picks):
        if leaf_hash(client.get(f"entries/{i}")) != leaves[i]:
            raise VerificationFailed(f"entry {i}: served at entries/{i} with other bytes")
        proof = client.proof(f"proof/inclusion?index={i}&size={size}")
        try:
            verify_inclusion(i, size, leaves[i], proof, checkpoint.root)
        except VerificationFailed as exc:
            raise VerificationFailed(f"entry {i}: the served inclusion proof: {exc}") from exc
    return tuple(sorted(picks))


def _check_saved(
    client: LogClient, checkpoint: Checkpoint, leaves: list[bytes], saved: str, log: Vkey
) -> Checkpoint:
    old = verify_checkpoint(saved, log).checkpoint
    check_extends(client, old, checkpoint)
    # Independently of the served proof: the old root is the root of the old prefix.
    if tree_root(leaves[: old.size]) != old.root:
        raise VerificationFailed(
            f"the first {old.size} entries do not hash to the saved checkpoint's root: a fork"
        )
    return old


def check_extends(client: LogClient, old: Checkpoint, new: Checkpoint) -> None:
    """RFC 9162 §2.1.4: `new` extends `old`, or the log rolled back or forked."""
    if old.origin != new.origin:
        raise VerificationFailed(f"the log's origin changed from {old.origin!r} to {new.origin!r}")
    if new.size < old.size:
        raise VerificationFailed(
            f"rollback: the log now shows size {new.size}, smaller than size {old.size} seen before"
        )
    proof: list[bytes] = []
    if 0 < old.size < new.size:
        proof = client.proof(f"proof/consistency?first={old.size}&second={new.size}")
    try:
        verify_consistency(old.size, new.size, old.root, new.root, proof)
    except VerificationFailed as exc:
        raise VerificationFailed(
            f"fork: the checkpoint at size {new.size} does not extend the one at size "
            f"{old.size} ({exc})"
        ) from exc


@dataclass(frozen=True, slots=True)
class MonitorResult:
    previous: Checkpoint | None
    current: VerifiedCheckpoint


def monitor(
    client: LogClient,
    state: Path,
    log: Vkey,
    witnesses: Sequence[Vkey] = (),
    quorum: int = 0,
) -> MonitorResult:
    """One monitoring round: the new checkpoint must verify and extend the one in `state`.

    On an alarm the state is kept as it was and both signed checkpoints are written beside it
    (`<state>.evidence`): two notes signed by the same key that do not lie on one tree are
    proof that the log misbehaved."""
    previous = _load_state(state, log)
    note = client.checkpoint()
    current = verify_checkpoint(note, log, witnesses, quorum)
    if previous is not None:
        try:
            check_extends(client, previous, current.checkpoint)
        except VerificationFailed:
            evidence = state.with_name(state.name + ".evidence")
            evidence.write_text(
                "# seen before\n" + previous.note + "\n# served now\n" + note, encoding="utf-8"
            )
            raise
    _save_state(state, current.checkpoint)
    return MonitorResult(previous, current)


def _load_state(state: Path, log: Vkey) -> Checkpoint | None:
    try:
        data: Any = json.loads(state.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CannotCheck(f"{state}: cannot read the monitor's state ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("checkpoint"), str):
        raise CannotCheck(f"{state}: not a monitor state file")
    # The saved note is verified again: a state file edited by hand proves nothing.
    old = verify_checkpoint(data["checkpoint"], log).checkpoint
    if (old.size, base64.b64encode(old.root).decode()) != (data.get("size"), data.get("root")):
        raise CannotCheck(f"{state}: its size and root are not those of its checkpoint")
    return old


def _save_state(state: Path, checkpoint: Checkpoint) -> None:
    data = {
        "origin": checkpoint.origin,
        "size": checkpoint.size,
        "root": base64.b64encode(checkpoint.root).decode(),
        "checkpoint": checkpoint.note,
    }
    tmp = state.with_name(state.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(state)  # a crash leaves the old state or the new, never half of one
