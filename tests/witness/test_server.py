"""The witness (C2SP tlog-witness) from the spec's own examples, over HTTP and in the CLI."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from clearance.audit.checkpoint import Checkpoint
from clearance.audit.cosignature import (
    CosignatureVerifier,
    Cosigner,
    cosignatures,
    generate_witness_key,
    split_note,
)
from clearance.audit.keys import NoteSigner, generate_signing_key
from clearance.audit.merkle import MemoryTree, consistency_proof
from clearance.audit.note import sign_note
from clearance.cli.app import app as cli_app
from clearance.errors import VerificationError
from clearance.net.serving import serve_in_thread
from clearance.witness import protocol
from clearance.witness.protocol import MalformedRequest, encode, parse
from clearance.witness.server import Witness, WitnessState, witness_app
from tests.gateway.conftest import make_instance

ORIGIN = "example.com/behind-the-sofa"
CLEARANCE = str(Path(sys.executable).parent / "clearance")

# C2SP tlog-witness, "add-checkpoint": the example request body, as the spec prints it.
SPEC_REQUEST = """old 20852014
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=

example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=
"""  # noqa: E501
# C2SP tlog-cosignature: the example witness line (no key is published for it).
SPEC_COSIGNATURE = (
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2"
    "oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)


class Log:
    """A log of our own making: a tree, a key, and checkpoints signed at any size."""

    def __init__(self, origin: str = ORIGIN, entries: int = 0) -> None:
        self.key = NoteSigner.from_text(generate_signing_key(origin))
        self.origin = origin
        self.tree = MemoryTree([b"entry %d" % i for i in range(entries)])

    def grow(self, n: int) -> None:
        for _ in range(n):
            self.tree.append(b"entry %d" % self.tree.size)

    def note(self, size: int | None = None, root: bytes | None = None) -> str:
        size = self.tree.size if size is None else size
        root = self.tree.root(size) if root is None else root
        return sign_note(Checkpoint(self.origin, size, root).body(), self.key)

    def request(self, old: int, size: int | None = None, root: bytes | None = None) -> bytes:
        size = self.tree.size if size is None else size
        proof = consistency_proof(old, size, self.tree.read) if 0 < old < size else []
        return encode(old, proof, self.note(size, root))


@pytest.fixture
def cosigner() -> Cosigner:
    return Cosigner.from_text(generate_witness_key("witness.test/w1"))


@pytest.fixture
def log() -> Log:
    return Log(entries=5)


@pytest.fixture
def witness(tmp_path: Path, cosigner: Cosigner, log: Log) -> Iterator[Witness]:
    state = WitnessState(tmp_path / "witness.sqlite3")
    yield Witness(cosigner, {log.origin: [log.key.verifier]}, state)
    state.close()


def _cosignature(witness: Witness, note: str, line: str) -> int:
    """The timestamp of `line`, a valid cosignature of `note` by the witness's key."""
    text, _ = split_note(note)
    found = cosignatures(text, [line], [witness.cosigner.verifier])
    assert set(found) == {witness.cosigner.name}, line
    return found[witness.cosigner.name].timestamp


def test_the_spec_example_request_parses() -> None:
    request = parse(SPEC_REQUEST.encode())
    assert request.old == 20852014
    assert len(request.proof) == 4 and all(len(h) == 32 for h in request.proof)
    assert request.checkpoint.origin == ORIGIN and request.checkpoint.size == 20852163
    assert request.text == "example.com/behind-the-sofa\n20852163\n" + (
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
    # Our encoder writes the same bytes back.
    assert request.encode() == SPEC_REQUEST.encode()


def test_the_spec_example_cosignature_is_framed_as_v1() -> None:
    """Key id, then a big-endian timestamp (the spec's "time 1679315147"), then 64 bytes."""
    raw = base64.b64decode(SPEC_COSIGNATURE.split(" ")[2])
    assert len(raw) == 4 + 8 + 64
    assert raw[:4].hex() == "8d66cf3f"
    assert int.from_bytes(raw[4:12], "big") == 1679315147
    # A verifier for another key ignores it; one claiming its name and id but with another
    # public key refuses it.
    other = Cosigner.from_text(generate_witness_key("witness.example.com/w1"))
    text, _ = split_note(SPEC_REQUEST.split("\n\n", 1)[1])
    assert other.verifier.verify(text, SPEC_COSIGNATURE) is None  # another key id
    impostor = CosignatureVerifier("witness.example.com/w1", 0x8D66CF3F, other.verifier.public)
    with pytest.raises(VerificationError, match="invalid cosignature"):
        impostor.verify(text, SPEC_COSIGNATURE)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (SPEC_REQUEST.replace("old 20852014", "old 020852014"), "not a size"),
        (SPEC_REQUEST.replace("old 20852014", "old 20852164"), "larger than"),
        (SPEC_REQUEST.replace("old 20852014", "old -1"), "not a size"),
        (SPEC_REQUEST.replace("old 20852014", "old ²"), "not a size"),
        (SPEC_REQUEST.replace("old 20852014", "new 20852014"), "old <size>"),
        (SPEC_REQUEST.replace("PlRNCrwH", "!!RNCrwH"), "not base64"),
        (SPEC_REQUEST.replace("PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=", "AAAA"), "SHA-256"),
        (SPEC_REQUEST.replace("\n\nexample.com", "\nexample.com"), "blank line|proof line"),
        (SPEC_REQUEST.replace("20852163", "2O852163"), "size"),
        (
            "old 0\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\n"
            + SPEC_REQUEST.split("\n\n")[1]
            + "\n\n"
            + SPEC_REQUEST.split("\n\n")[2],
            "empty when the old size is 0",
        ),
        (
            "old 1\n"
            + "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n" * 64
            + "\n"
            + SPEC_REQUEST.split("\n\n", 1)[1],
            "63",
        ),
    ],
)
def test_malformed_requests_are_refused(body: str, why: str) -> None:
    with pytest.raises(MalformedRequest, match=why):
        parse(body.encode())


def test_first_checkpoint_then_extensions_are_cosigned(witness: Witness, log: Log) -> None:
    first = witness.add_checkpoint(log.request(0))
    assert first.status == 200
    stamp = _cosignature(witness, log.note(), first.body)
    assert abs(stamp - time.time()) < 60
    log.grow(300)  # across a tile boundary: a proof of several hashes
    second = witness.add_checkpoint(log.request(5))
    assert second.status == 200, second.body
    assert _cosignature(witness, log.note(), second.body) >= stamp
    seen = witness.state.seen(ORIGIN)
    assert seen is not None and (seen.size, seen.root) == (305, log.tree.root())
    # The same checkpoint again (old = size, same root) is cosigned again.
    assert witness.add_checkpoint(log.request(305)).status == 200


def test_a_stale_old_size_gets_409_with_the_witness_size(witness: Witness, log: Log) -> None:
    assert witness.add_checkpoint(log.request(0)).status == 200
    log.grow(3)
    stale = witness.add_checkpoint(log.request(0))
    assert (stale.status, stale.body, stale.media_type) == (409, "5\n", protocol.SIZE_TYPE)
    assert witness.add_checkpoint(log.request(5)).status == 200  # the client retries from 5


def test_a_fork_is_refused_and_kept_as_evidence(witness: Witness, log: Log) -> None:
    assert witness.add_checkpoint(log.request(0)).status == 200
    forked = Log(entries=0)
    forked.key, forked.tree = log.key, MemoryTree([b"other %d" % i for i in range(5)])
    same_size = witness.add_checkpoint(forked.request(5, 5))
    assert same_size.status == 409 and "fork" in same_size.body
    forked.grow(4)
    # A bigger forked tree, with a proof from the forked tree itself: it does not verify
    # against the root the witness holds.
    grown = witness.add_checkpoint(forked.request(5))
    assert grown.status == 422
    reasons = [reason for reason, _ in witness.state.evidence(ORIGIN)]
    assert reasons == ["fork: same size, another root", "the consistency proof does not verify"]
    seen = witness.state.seen(ORIGIN)
    assert seen is not None and (seen.size, seen.root) == (5, log.tree.root())


def test_a_rollback_is_refused(witness: Witness, log: Log) -> None:
    log.grow(5)
    assert witness.add_checkpoint(log.request(0)).status == 200
    older = witness.add_checkpoint(log.request(10, 7))  # old 10 > checkpoint size 7
    assert older.status == 400
    assert witness.add_checkpoint(log.request(0, 7)).status == 409


def test_unknown_logs_and_untrusted_signatures(witness: Witness, log: Log) -> None:
    assert witness.add_checkpoint(Log("other.example/log", 3).request(0)).status == 404
    impostor = Log(entries=5)  # the right origin, another key
    assert witness.add_checkpoint(impostor.request(0)).status == 403
    # A trusted key's name and id with a bad signature is no signature.
    note = log.note()
    text, (line,) = split_note(note)
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[-1] ^= 1
    bad = text + "\n" + line.rsplit(" ", 1)[0] + " " + base64.b64encode(raw).decode() + "\n"
    assert witness.add_checkpoint(encode(0, [], bad)).status == 403
    # Other keys' signatures beside the log's are ignored.
    extra = note + f"— someone.else/k {base64.b64encode(b'1234' + bytes(64)).decode()}\n"
    assert witness.add_checkpoint(encode(0, [], extra)).status == 200
    assert witness.state.seen("other.example/log") is None


def test_concurrent_submissions_never_roll_back(witness: Witness, log: Log) -> None:
    """tlog-witness: check-and-persist is atomic, or two requests from the same old size roll the
    log back. Many threads race from the same old size with different new sizes."""
    assert witness.add_checkpoint(log.request(0)).status == 200
    log.grow(40)
    results: list[tuple[int, int]] = []
    barrier = threading.Barrier(8)

    def submit(size: int) -> None:
        barrier.wait()
        results.append((size, witness.add_checkpoint(log.request(5, size)).status))

    threads = [threading.Thread(target=submit, args=(6 + 4 * i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [size for size, status in results if status == 200]
    assert len(won) == 1 and sorted(s for _, s in results) == [200] + [409] * 7
    seen = witness.state.seen(ORIGIN)
    assert seen is not None and seen.size == won[0]


def test_the_state_survives_a_restart(tmp_path: Path, cosigner: Cosigner, log: Log) -> None:
    state = WitnessState(tmp_path / "w.sqlite3")
    assert (
        Witness(cosigner, {ORIGIN: [log.key.verifier]}, state).add_checkpoint(log.request(0)).status
        == 200
    )
    state.close()
    again = WitnessState(tmp_path / "w.sqlite3")
    try:
        answer = Witness(cosigner, {ORIGIN: [log.key.verifier]}, again).add_checkpoint(
            log.request(0)
        )
        assert (answer.status, answer.body) == (409, "5\n")
    finally:
        again.close()


def test_over_http(witness: Witness, log: Log) -> None:
    with serve_in_thread(witness_app(witness)) as url, httpx.Client(base_url=url) as client:
        ok = client.post("/add-checkpoint", content=log.request(0))
        assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
        _cosignature(witness, log.note(), ok.text)
        conflict = client.post("/add-checkpoint", content=log.request(0))
        assert conflict.status_code == 409
        assert conflict.headers["content-type"] == protocol.SIZE_TYPE
        assert conflict.text == "5\n"
        assert client.post("/add-checkpoint", content=b"\xff\xfe").status_code == 400
        huge = client.post("/add-checkpoint", content=b"old 0\n" + b"A" * 100_000)
        assert huge.status_code == 413
        assert client.get("/add-checkpoint").status_code == 405


def _clearance(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLEARANCE, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_keygen_and_serve_from_the_command_line(tmp_path: Path, log: Log) -> None:
    key = tmp_path / "w.key"
    made = _clearance("witness", "keygen", "witness.test/cli", "--out", str(key))
    assert made.returncode == 0, made.stderr
    vkey = made.stdout.strip().splitlines()[-1]
    verifier = CosignatureVerifier.from_text(vkey)
    assert verifier.name == "witness.test/cli"
    assert base64.b64decode(vkey.split("+", 2)[2])[0] == 0x04  # tlog-cosignature key type
    assert key.stat().st_mode & 0o777 == 0o600
    again = _clearance("witness", "keygen", "witness.test/cli", "--out", str(key))
    assert again.returncode != 0 and "never overwritten" in again.stderr

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            CLEARANCE,
            "witness",
            "serve",
            "--key",
            str(key),
            "--data",
            str(tmp_path / "data"),
            "--port",
            str(port),
            "--log",
            f"{log.origin}={log.key.verifier.text}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.post(url + "/add-checkpoint", content=log.request(0))
                break
            except httpx.ConnectError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr
                time.sleep(0.05)
        assert answer.status_code == 200, answer.text
        text, _ = split_note(log.note())
        assert set(cosignatures(text, [answer.text], [verifier])) == {"witness.test/cli"}
    finally:
        server.terminate()
        server.communicate(timeout=30)
    assert (tmp_path / "data" / "witness.sqlite3").exists()
    bad = _clearance(
        "witness", "serve", "--key", str(key), "--data", str(tmp_path), "--log", "no-equals-sign"
    )
    assert bad.returncode != 0 and "ORIGIN=VKEY" in bad.stderr


def test_status_from_the_command_line(tmp_path: Path, cosigner: Cosigner) -> None:
    _, config = make_instance(f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "i")
    vkey = cosigner.verifier.text
    text = config.read_text().replace("[audit]\n", "[audit]\nwitness_quorum = 1\n", 1)
    config.write_text(
        text + f'\n[[audit.witnesses]]\nurl = "http://127.0.0.1:9"\nvkey = "{vkey}"\n'
    )
    shown = CliRunner().invoke(cli_app, ["witness", "status", "--config", str(config), "--json"])
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert document["quorum"] == 1
    assert document["witnesses"] == [
        {
            "name": "witness.test/w1",
            "url": "http://127.0.0.1:9",
            "cosigned_size": 0,
            "cosigned_at": None,
            "behind": document["checkpoint_size"],
        }
    ]
    plain = CliRunner().invoke(cli_app, ["witness", "status", "--config", str(config)])
    assert "witness.test/w1" in plain.stdout and "never" in plain.stdout
