"""Coverage-guided fuzzing of the parsers that read hostile input (issue 7, item 4).

A short atheris run per target (bench/fuzz.py runs 120 s each), then the inputs it found that
used to crash, kept as regressions: only `ClearanceError`s may come out of these parsers.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from clearance.audit.checkpoint import Checkpoint
from clearance.audit.keys import NoteVerifier
from clearance.audit.note import open_note
from clearance.audit.routes import parse_index
from clearance.audit.tiles import parse_tile_path
from clearance.errors import ClearanceError, InvalidInput, NotFound, VerificationError
from clearance.screening.loaders import csl, ofac, un
from tests.security import fuzz_targets

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 8  # all targets together, in CI


def run_atheris(target: str, seconds: int, artifacts: Path) -> tuple[int, int, str]:
    """(exit code, executions, output tail) of one atheris run in a fresh process."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.security.fuzz_main",
            target,
            f"-max_total_time={seconds}",
            "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    found = re.search(r"stat::number_of_executed_units:\s*(\d+)", done.stderr)
    return done.returncode, int(found.group(1)) if found else 0, done.stderr[-4000:]


def test_atheris_finds_no_crash_in_any_target(tmp_path: Path) -> None:
    """One process for all targets (its first input byte picks one) keeps CI short."""
    code, executions, tail = run_atheris(fuzz_targets.ALL, SECONDS, tmp_path)
    assert code == 0, f"crash (input saved under {tmp_path}):\n{tail}"
    assert executions > 1000, tail


@pytest.mark.parametrize("target", sorted(fuzz_targets.TARGETS))
def test_some_seed_is_accepted(target: str) -> None:
    """At least one seed is a valid input, so the fuzzer starts deep inside each parser."""
    accepted = 0
    for seed in fuzz_targets.seeds(target):
        try:
            fuzz_targets.TARGETS[target](seed)
        except ClearanceError:
            continue
        accepted += 1
    assert accepted


def test_the_harness_lets_every_other_exception_through(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(_: bytes) -> object:
        raise IndexError("a crash")

    def refuse(_: bytes) -> object:
        raise VerificationError("a clean refusal")

    monkeypatch.setitem(fuzz_targets.TARGETS, "crash", crash)
    monkeypatch.setitem(fuzz_targets.TARGETS, "refuse", refuse)
    fuzz_targets.run("refuse", b"")
    with pytest.raises(IndexError):
        fuzz_targets.run("crash", b"")


# --- regressions: inputs atheris found, each of which used to raise a non-Clearance error ---


@pytest.mark.parametrize(
    "body",
    [
        "log\n0\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBka\u00c7xwdHh8=\n",  # non-ASCII base64
        "log\n\u00b2\n" + "A" * 43 + "=\n",  # a superscript two passes str.isdigit
        "log\n" + "1" * 5000 + "\n" + "A" * 43 + "=\n",  # over int()'s 4,300-digit limit
        "log\n18446744073709551616\n" + "A" * 43 + "=\n",  # 2**64: not a uint64
    ],
)
def test_malformed_checkpoints_are_verification_errors(body: str) -> None:
    with pytest.raises(VerificationError):
        Checkpoint.parse(body)


def test_non_ascii_signature_or_key_is_refused_cleanly() -> None:
    verifier = fuzz_targets._SIGNER.verifier
    with pytest.raises(VerificationError):
        open_note("log\n1\nAAAA\n\n\u2014 fuzz.clearance.test \u00ff\u00ff\n", verifier)
    with pytest.raises(InvalidInput):
        NoteVerifier.from_text("name+0012aec0+A\u00ff9n")


def test_csv_lists_read_a_bare_cr_after_a_quote_as_a_line_end() -> None:
    """csv raised "new-line character seen in unquoted field" unless opened with newline=""."""
    assert csl.load(b'"_id","source","name"\n"a","b","ht"t,\rveons\n').entries
    assert ofac.rows(b'1,"ht"t,\rveons\n') == [["1", "htt", ""], ["veons"]]


def test_csv_lists_refuse_a_field_over_the_csv_limit_as_invalid_input() -> None:
    row = b'"a","b","' + b"x" * 200_000 + b'"\n'
    with pytest.raises(InvalidInput):
        csl.load(b'"_id","source","name"\n' + row)
    with pytest.raises(InvalidInput):
        ofac.load([("sdn.csv", row)])


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0" encoding="UTF-4"?><CONSOLIDATED_LIST/>',  # unknown encoding
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(
            b'<!ENTITY %c "%s">' % (ord("b") + i, (b"&%c;" % (ord("a") + i)) * 10) for i in range(8)
        )
        + b"]><CONSOLIDATED_LIST>&i;</CONSOLIDATED_LIST>",  # billion laughs (CVE-2013-0340)
    ],
)
def test_un_list_refuses_hostile_xml_as_invalid_input(data: bytes) -> None:
    with pytest.raises(InvalidInput):
        un.load(data)


@pytest.mark.parametrize("value", ["\u00b2", "\u0661\u0662", "9" * 19, "1" * 20, "", "-1", "1e3"])
def test_audit_indexes_are_ascii_and_64_bit(value: str) -> None:
    with pytest.raises(InvalidInput):
        parse_index(value, "index")
    assert parse_index(str(2**63 - 1), "index") == 2**63 - 1


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/" + "x999/" * 6 + "999",
        "tile/0/" + "x999/" * 1500 + "999",
        "tile/0/x036/x028/x797/x018/x963/969",
    ],
)
def test_tile_paths_beyond_a_64_bit_log_are_not_found(path: str) -> None:
    with pytest.raises(NotFound):
        parse_tile_path(path)
    assert parse_tile_path("tile/0/x036/x028/x797/x018/x963/967").index == 2**55 - 1
