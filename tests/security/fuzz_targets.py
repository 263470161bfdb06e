"""Fuzz targets: bytes in; the only exceptions allowed out are the project's own `ClearanceError`s.

Each target feeds hostile input to one parser the way it arrives in production (OCR text for the
MRZ, a phone app's EF.SOD for the chip, downloaded files for the list loaders, a fetched note for
the checkpoint parser, a URL path for the tile routes). Anything else escaping (IndexError,
ValueError, UnicodeDecodeError ...) is a crash: a client would see a 500, or a list update would
die with a traceback.

Run by atheris (`fuzz_main.py`): briefly for all targets at once in CI
(tests/security/test_fuzz_parsers.py), 120 s per target in bench/fuzz.py.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from datetime import date
from functools import cache
from pathlib import Path

from clearance.audit.checkpoint import Checkpoint, open_checkpoint
from clearance.audit.keys import NoteSigner, NoteVerifier, generate_signing_key
from clearance.audit.note import sign_note
from clearance.audit.routes import parse_index
from clearance.audit.tiles import parse_tile_path, split_bundle
from clearance.errors import ClearanceError
from clearance.identity.chip import masterlist, passive_authentication
from clearance.identity.chip.lds import dg2_facial_record, parse_dg1
from clearance.identity.chip.portrait import facial_record
from clearance.identity.mrz import parse_mrz
from clearance.screening.loaders import csl, ftm, ofac, un
from tests.fixtures.identity import chip

Target = Callable[[bytes], object]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TODAY = date(2026, 6, 1)
FILE_SEPARATOR = b"\n\x00\x00\n"  # splits one fuzz input into the OFAC sdn/alt/add files
_SIGNER = NoteSigner.from_text(generate_signing_key("fuzz.clearance.test"))
ORIGIN = "fuzz.clearance.test/audit"
ALL = "all"  # the pseudo-target that runs every target in one process
BASELINE = "baseline"  # the harness alone (decoding the input), for bench/fuzz.py's baseline


def text(data: bytes) -> str:
    """What a client or OCR engine could hand over: any Unicode, decoded leniently."""
    return data.decode("utf-8", errors="replace")


def mrz(data: bytes) -> object:
    return parse_mrz(text(data), today=TODAY)


def chip_sod(data: bytes) -> object:
    """EF.SOD as a phone app sends it, verified beside a good DG1 and DG2 against the test CSCA
    (a fuzzer cannot forge the signature: the parsers before it are what it explores); the same
    bytes as a DG1, a DG2 and a CSCA master list (the serving process parses all three before
    any signature is checked)."""
    with suppress(ClearanceError):
        facial_record(dg2_facial_record(data))
    with suppress(ClearanceError):
        parse_dg1(data)
    with suppress(ClearanceError):
        masterlist.parse(data)
    good = _chip_passport()
    return passive_authentication(good.dg1, good.dg2, data, cscas=good.cscas, at=chip.NOW)


@cache
def _chip_passport() -> chip.Passport:
    return chip.passport()


def ofac_sdn(data: bytes) -> object:
    names = ("sdn.csv", "alt.csv", "add.csv")
    return ofac.load(list(zip(names, data.split(FILE_SEPARATOR)[:3], strict=False)))


def checkpoint_note(data: bytes) -> object:
    """A note as an auditor fetches it, and its body alone (a fuzzer cannot forge the
    signature, so the body parser is fed directly too)."""
    note = text(data)
    with suppress(ClearanceError):
        Checkpoint.parse(note)
    with suppress(ClearanceError):
        Checkpoint.parse(note.partition("\n\n")[0] + "\n")
    return open_checkpoint(note, _SIGNER.verifier, ORIGIN)


def verifier_key(data: bytes) -> object:
    return NoteVerifier.from_text(text(data))


def tile_path(data: bytes) -> object:
    """A tile path and an entry index as the audit routes parse them, and a tile bundle."""
    path = text(data)
    with suppress(ClearanceError):
        parse_index(path, "index")
    with suppress(ClearanceError):
        split_bundle(data)
    return parse_tile_path(path)


TARGETS: dict[str, Target] = {
    "mrz": mrz,
    "chip_sod": chip_sod,
    "ofac_sdn": ofac_sdn,
    "csl": csl.load,
    "un_xml": un.load,
    "ftm": ftm.load,
    "checkpoint_note": checkpoint_note,
    "verifier_key": verifier_key,
    "tile_path": tile_path,
}


def every_target(data: bytes) -> object:
    """All targets in one fuzzing process (CI): the first byte picks the target."""
    if not data:
        return None
    names = sorted(TARGETS)
    return TARGETS[names[data[0] % len(names)]](data[1:])


def run(name: str, data: bytes) -> None:
    """One execution: a `ClearanceError` is a clean refusal; anything else propagates."""
    if name == BASELINE:
        text(data)
        return
    target = every_target if name == ALL else TARGETS[name]
    with suppress(ClearanceError):
        target(data)


def _mrz_seeds() -> list[bytes]:
    return [p.read_bytes() for p in sorted((FIXTURES / "identity").glob("*.mrz"))]


def _chip_seeds() -> list[bytes]:
    """The good passport's SOD (verifies), an ECDSA one, its DG1 and DG2, a CMS master list."""
    good = _chip_passport()
    ecdsa = chip.document_signer(chip.default_csca(), key=chip.ec_key("brainpoolP256r1"))
    opts = chip.SodOptions(signature="ecdsa", digest="sha384")
    return [
        good.sod,
        chip.sod({1: good.dg1, 2: good.dg2}, ecdsa, opts),
        good.dg1,
        good.dg2,
        chip.master_list_cms([chip.default_csca().cert], chip.default_csca()),
    ]


def _signed_checkpoint(size: int) -> bytes:
    body = Checkpoint(ORIGIN, size, bytes(range(32))).body()
    return sign_note(body, _SIGNER).encode()


def seeds(name: str) -> list[bytes]:
    """Valid inputs the fuzzer mutates from, so it gets past the first check quickly."""
    if name == BASELINE:
        return [b"seed"]
    if name == ALL:
        return [bytes([i]) + s for i, n in enumerate(sorted(TARGETS)) for s in seeds(n)]
    lists = FIXTURES / "lists"
    by_target: dict[str, Callable[[], list[bytes]]] = {
        "mrz": _mrz_seeds,
        "chip_sod": _chip_seeds,
        "ofac_sdn": lambda: [
            FILE_SEPARATOR.join((lists / f).read_bytes() for f in ("sdn.csv", "alt.csv", "add.csv"))
        ],
        "csl": lambda: [(lists / "csl.csv").read_bytes()],
        "un_xml": lambda: [(lists / "un.xml").read_bytes()],
        "ftm": lambda: [(lists / "ftm.jsonl").read_bytes()],
        "checkpoint_note": lambda: [_signed_checkpoint(0), _signed_checkpoint(1234)],
        "verifier_key": lambda: [_SIGNER.verifier.text.encode()],
        "tile_path": lambda: [
            b"tile/0/000",
            b"tile/entries/x001/234.p/17",
            b"tile/3/x123/x456/789",
            b"12345",
        ],
    }
    return by_target[name]()
