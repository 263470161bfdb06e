"""Check an auditor's bundle written by `clearance audit export`.

    manifest.json         what the bundle holds: filter, counts, each entry, SHA-256 of each file
    checkpoint.txt        one C2SP checkpoint, the log's signed note with any witness cosignatures
    keys.json             {"log": vkey, "witnesses": [vkey, ...], "quorum": n}
    entries/<index>.json  the exact bytes of entry <index>, as hashed into the tree
    proofs/<index>.json   {"index", "size", "hashes": [base64, ...]}: RFC 9162 inclusion proof
    ...                   the human-readable report (report.pdf, or entries.* and summary.*)

Every problem found is reported, each naming its file, entry index or key; nothing is trusted
from the bundle except what the checkpoint's signatures cover. A bundle's keys prove nothing
about who signed: an auditor passes the log's key (and witnesses') obtained independently.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearance_verify.errors import CannotCheck, VerificationFailed
from clearance_verify.merkle import leaf_hash, verify_inclusion
from clearance_verify.note import COSIGNATURE_V1, ED25519, VerifiedCheckpoint, Vkey
from clearance_verify.note import verify_checkpoint as check_note

FORMAT = "clearance-audit-bundle/1"
MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class Keys:
    log: Vkey
    witnesses: tuple[Vkey, ...] = ()
    quorum: int = 0


@dataclass(slots=True)
class BundleReport:
    entries: int = 0
    checkpoint: VerifiedCheckpoint | None = None
    keys_from_bundle: bool = False
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise VerificationFailed(f"{what}: cannot read ({exc.strerror})") from exc
    except ValueError as exc:
        raise VerificationFailed(f"{what}: not valid JSON") from exc


def bundle_keys(directory: Path) -> Keys:
    """The keys the bundle itself names (keys.json)."""
    data = _json(directory / "keys.json", "keys.json")
    if not isinstance(data, dict) or not isinstance(data.get("log"), str):
        raise VerificationFailed("keys.json: no log key")
    witnesses = data.get("witnesses", [])
    quorum = data.get("quorum", 0)
    if not isinstance(witnesses, list) or not isinstance(quorum, int):
        raise VerificationFailed("keys.json: malformed witnesses or quorum")
    return Keys(
        Vkey.parse(data["log"], ED25519),
        tuple(Vkey.parse(str(w), COSIGNATURE_V1) for w in witnesses),
        quorum,
    )


def verify_bundle(directory: Path, keys: Keys | None = None) -> BundleReport:
    """Check everything in the bundle; `keys` from the command line, else the bundle's own."""
    if not (directory / MANIFEST).is_file():
        raise CannotCheck(f"{directory}: no {MANIFEST}; is this an audit bundle?")
    report = BundleReport()
    manifest = _json(directory / MANIFEST, MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("bundle") != FORMAT:
        raise VerificationFailed(f"{MANIFEST}: not a {FORMAT} manifest")
    _check_files(directory, manifest, report)
    if keys is None:
        keys = bundle_keys(directory)
        report.keys_from_bundle = True
    else:
        _compare_keys(directory, keys, report)
    try:
        note = (directory / "checkpoint.txt").read_text(encoding="utf-8")
        verified = check_note(note, keys.log, keys.witnesses, keys.quorum)
    except (OSError, UnicodeDecodeError) as exc:
        report.problems.append(f"checkpoint.txt: cannot read ({exc})")
        return report
    except VerificationFailed as exc:
        report.problems.append(f"checkpoint.txt: {exc}".replace("checkpoint: ", "", 1))
        return report
    report.checkpoint = verified
    _check_log_summary(manifest, verified, report)
    _check_entries(directory, manifest, verified, report)
    return report


def _check_files(directory: Path, manifest: dict[str, Any], report: BundleReport) -> None:
    files = manifest.get("files")
    if not isinstance(files, dict):
        report.problems.append(f"{MANIFEST}: no list of file hashes")
        return
    for name, digest in sorted(files.items()):
        path = directory / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            report.problems.append(f"{MANIFEST}: file name {name!r} leaves the bundle")
        elif not path.is_file():
            report.problems.append(f"{name}: listed in the manifest but missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            report.problems.append(f"{name}: its SHA-256 does not match the manifest")
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        name = path.relative_to(directory).as_posix()
        if name != MANIFEST and name not in files:
            report.problems.append(f"{name}: in the bundle but not listed in the manifest")


def _compare_keys(directory: Path, keys: Keys, report: BundleReport) -> None:
    try:
        named = bundle_keys(directory)
    except (VerificationFailed, CannotCheck):
        return
    if named.log.text != keys.log.text:
        report.notes.append(
            f"the bundle names log key {named.log.label}; checking with yours, {keys.log.label}"
        )


def _check_log_summary(
    manifest: dict[str, Any], verified: VerifiedCheckpoint, report: BundleReport
) -> None:
    log = manifest.get("log")
    checkpoint = verified.checkpoint
    root = base64.b64encode(checkpoint.root).decode()
    if not isinstance(log, dict) or (log.get("size"), log.get("root")) != (checkpoint.size, root):
        report.problems.append(f"{MANIFEST}: its log size and root are not the checkpoint's")


def _check_entries(
    directory: Path, manifest: dict[str, Any], verified: VerifiedCheckpoint, report: BundleReport
) -> None:
    listed = manifest.get("entries")
    if not isinstance(listed, list):
        report.problems.append(f"{MANIFEST}: no list of entries")
        return
    counts = manifest.get("counts")
    if not isinstance(counts, dict) or counts.get("entries") != len(listed):
        report.problems.append(f"{MANIFEST}: its entry count is not the number of entries listed")
    seen: set[int] = set()
    for item in listed:
        if not isinstance(item, dict) or not isinstance(item.get("index"), int):
            report.problems.append(f"{MANIFEST}: malformed entry {str(item)[:60]}")
            continue
        index = item["index"]
        if index in seen:
            report.problems.append(f"entry {index}: listed twice")
            continue
        seen.add(index)
        try:
            _check_entry(directory, index, verified)
            report.entries += 1
        except VerificationFailed as exc:
            report.problems.append(f"entry {index}: {exc}")


def _check_entry(directory: Path, index: int, verified: VerifiedCheckpoint) -> None:
    checkpoint = verified.checkpoint
    entry_file, proof_file = f"entries/{index}.json", f"proofs/{index}.json"
    try:
        entry = (directory / entry_file).read_bytes()
    except OSError as exc:
        raise VerificationFailed(f"{entry_file} cannot be read ({exc.strerror})") from exc
    proof = _json(directory / proof_file, proof_file)
    if not isinstance(proof, dict) or not isinstance(proof.get("hashes"), list):
        raise VerificationFailed(f"{proof_file} is not an inclusion proof")
    if proof.get("index") != index:
        raise VerificationFailed(f"{proof_file} is the proof for index {proof.get('index')}")
    if proof.get("size") != checkpoint.size:
        raise VerificationFailed(
            f"{proof_file} is for a tree of size {proof.get('size')}, "
            f"not the checkpoint's {checkpoint.size}"
        )
    hashes = _hashes(proof["hashes"], proof_file)
    try:
        verify_inclusion(index, checkpoint.size, leaf_hash(entry), hashes, checkpoint.root)
    except VerificationFailed as exc:
        raise VerificationFailed(
            f"{entry_file} with {proof_file}: {exc} (the entry was altered, or the proof is "
            "for another entry)"
        ) from exc


def _hashes(items: Sequence[object], where: str) -> list[bytes]:
    try:
        return [base64.b64decode(str(h), validate=True) for h in items]
    except (binascii.Error, ValueError) as exc:
        raise VerificationFailed(f"{where}: a hash is not valid base64") from exc
