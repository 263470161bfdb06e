"""The live audit log, verified by the Go checksum database's own packages (issue 16).

tests/audit/go/verifylog is a small Go program over golang.org/x/mod/sumdb/note and sumdb/tlog
(Debian's golang-golang-x-mod-dev, built in GOPATH mode: no module proxy). It shares no code with
Clearance: it opens the checkpoint as a C2SP signed note, checks C2SP tlog-cosignature lines with
a note.Verifier of its own, authenticates the C2SP tlog-tiles against the signed root, and proves
entries (RFC 9162 §2.1.3) and an older checkpoint (§2.1.4) from the tiles. Each case below runs
it against a real gateway whose log holds real requests; a small proxy in front serves a
tampered tile, entry or checkpoint where a case needs one. Cosignatures come from our Python
`Cosigner`, from `clearance witness serve` driven by hand (C2SP tlog-witness), and, last, from a
gateway configured with `[[audit.witnesses]]` that serves them at /audit/checkpoint itself.

Skipped only when `go` is missing and CLEARANCE_REQUIRE_GO is unset; CI sets it (.ci/run).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from typer.testing import CliRunner

from clearance.app import create_app
from clearance.audit.checkpoint import Checkpoint, open_checkpoint
from clearance.audit.cosignature import Cosigner, generate_witness_key
from clearance.audit.keys import NoteSigner, NoteVerifier, generate_signing_key, load_signer
from clearance.audit.note import sign_note
from clearance.cli.app import app as cli_app
from clearance.config import load_settings
from clearance.demo.run import free_port, seed
from clearance.demo.upstream import demo_upstream_app
from clearance.net.protocol import DeadlineProtocol
from clearance.net.serving import serve_in_thread
from clearance.store import connect, migrate
from tests.gateway.conftest import CLEARANCE, Running, make_instance

SOURCE = Path(__file__).parent / "go" / "verifylog"
GOPATH = Path("/usr/share/gocode")  # where Debian's golang-*-dev packages put their sources
REQUIRE_GO = os.environ.get("CLEARANCE_REQUIRE_GO") == "1"
ORIGIN = "test.clearance.local/audit"
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]
# Past one full tile (C2SP tlog-tiles: 256 hashes), so the tree has full and partial tiles at
# level 0 and a partial tile at level 1, and an entry in a full tile is authenticated through
# its parent tile.
FIRST_REQUESTS = 40
MORE_REQUESTS = 260


@pytest.fixture(scope="module")
def verifylog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go verifier, built once for the module into a temporary directory."""
    go = shutil.which("go")
    if go is None:
        if REQUIRE_GO:
            pytest.fail("go is required (CLEARANCE_REQUIRE_GO=1): run ./scripts/system-deps")
        pytest.skip("go is not installed (./scripts/system-deps installs golang-go)")
    if not (GOPATH / "src/golang.org/x/mod/sumdb/tlog").is_dir():
        pytest.fail(f"golang.org/x/mod is not under {GOPATH}: run ./scripts/system-deps")
    out = tmp_path_factory.mktemp("verifylog")
    env = {
        **os.environ,
        "GOPATH": str(GOPATH),
        "GO111MODULE": "off",  # GOPATH mode: x/mod from the Debian package, no module proxy
        "GOFLAGS": "",
        "GOCACHE": str(out / "cache"),
    }
    built = subprocess.run(
        [go, "build", "-o", str(out / "verifylog"), "."],
        cwd=SOURCE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, f"go build failed:\n{built.stderr}"
    return out / "verifylog"


@dataclass(frozen=True)
class Log:
    url: str  # the live log's base: .../audit
    vkey: str  # as `clearance audit key` prints it
    signer: NoteSigner  # the log's own key, to make a log that lies
    older: Path  # a checkpoint signed before the last requests
    older_size: int
    indices: list[int]  # entries of real requests (clearance-audit-index)


def _checkpoint_covering(url: str, verifier: NoteVerifier, index: int) -> tuple[str, Checkpoint]:
    deadline = time.monotonic() + 10
    while True:
        note = httpx.get(f"{url}/checkpoint", timeout=5).text
        checkpoint = open_checkpoint(note, verifier, ORIGIN)
        if checkpoint.size > index:
            return note, checkpoint
        assert time.monotonic() < deadline, f"no checkpoint covers entry {index} after 10 s"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, _sqlite_template: Path) -> Iterator[Log]:
    """A gateway on SQLite whose log holds the demo's set-up and a few hundred real requests
    (allowed and denied), with a checkpoint saved part-way. One per module: the Go program only
    reads, and the tampering happens in the proxy, never in the log."""
    directory = tmp_path_factory.mktemp("go-interop")
    shutil.copyfile(_sqlite_template, directory / "clearance.db")
    settings, config = make_instance(f"sqlite:///{directory / 'clearance.db'}", directory / "i")
    settings = dataclasses.replace(
        settings, audit=dataclasses.replace(settings.audit, checkpoint_interval_seconds=0.05)
    )
    with serve_in_thread(demo_upstream_app(chunk_delay=0.0), lifespan="off") as upstream:
        engine = connect(settings.database_url)
        migrate(engine)
        keys = seed(engine, settings, upstream)
        engine.dispose()
        app = create_app(settings)
        with serve_in_thread(app, http=DeadlineProtocol) as url:
            running = Running(url, upstream, keys, settings, config, app=app)
            vkey = running.cli("audit", "key").output.strip().splitlines()[-1]
            verifier = NoteVerifier.from_text(vkey)
            allowed = running.openai(running.key("sven"))
            denied = running.openai(running.strict_key("sven"))  # no fallback: 451 for mythos

            statuses: set[int] = set()

            def requests(n: int) -> list[int]:
                indices = []
                for i in range(n):
                    client, model = (denied, "mythos-5") if i % 4 == 3 else (allowed, "fable-4")
                    raw = client.chat.completions.with_raw_response
                    try:
                        response = raw.create(model=model, messages=HELLO).http_response
                    except openai.APIStatusError as denial:  # 451: denied, and logged
                        response = denial.response
                    statuses.add(response.status_code)
                    indices.append(int(response.headers["clearance-audit-index"]))
                return indices

            first = requests(FIRST_REQUESTS)
            note, older = _checkpoint_covering(url + "/audit", verifier, max(first))
            (directory / "older.checkpoint").write_text(note)
            later = requests(MORE_REQUESTS)
            _checkpoint_covering(url + "/audit", verifier, max(later))
            assert statuses == {200, 451}
            yield Log(
                url=url + "/audit",
                vkey=vkey,
                signer=load_signer(settings.audit.signing_key_file),
                older=directory / "older.checkpoint",
                older_size=older.size,
                indices=first + later,
            )
            for client in running.clients:
                client.close()


@dataclass
class Proxy:
    """Forwards GETs to the live log, except a checkpoint to serve instead of the log's and
    responses to alter (path -> function of the body)."""

    url: str
    checkpoint: str | None = None
    tamper: dict[str, Callable[[bytes], bytes]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def _proxy_server(live: Log) -> Iterator[Proxy]:
    proxy = Proxy(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.removeprefix("/")
            if path == "checkpoint" and proxy.checkpoint is not None:
                status, body = 200, proxy.checkpoint.encode()
            else:
                try:
                    with urllib.request.urlopen(f"{live.url}/{path}", timeout=10) as resp:
                        status, body = resp.status, resp.read()
                except urllib.error.HTTPError as err:
                    status, body = err.code, err.read()
                if path in proxy.tamper:
                    body = proxy.tamper[path](body)
            self.send_response(status)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield proxy
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def proxy(_proxy_server: Proxy) -> Iterator[Proxy]:
    yield _proxy_server
    _proxy_server.checkpoint = None
    _proxy_server.tamper.clear()


def run(verifylog: Path, url: str, vkey: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(verifylog), "-url", url, "-vkey", vkey, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def passes(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert done.returncode == 0, done.stderr
    summary: dict[str, object] = json.loads(done.stdout)
    return summary


def fails(done: subprocess.CompletedProcess[str], reason: str) -> None:
    assert done.returncode == 1, f"verified when it should not have: {done.stdout}"
    assert reason in done.stderr, done.stderr


def flip(offset: int) -> Callable[[bytes], bytes]:
    def change(body: bytes) -> bytes:
        changed = bytearray(body)
        changed[offset] ^= 0x01
        return bytes(changed)

    return change


def live_note(log: Log) -> tuple[str, Checkpoint]:
    note = httpx.get(f"{log.url}/checkpoint", timeout=5).text
    return note, open_checkpoint(note, NoteVerifier.from_text(log.vkey), ORIGIN)


def text_of(note: str) -> str:
    """The signed text of a note (C2SP signed-note: the text ends at the last blank line)."""
    return note[: note.rindex("\n\n") + 1]


def other_key_vkey() -> tuple[NoteSigner, str]:
    """Another Ed25519 key under the log's own name."""
    signer = NoteSigner.from_text(generate_signing_key(ORIGIN))
    return signer, signer.verifier.text


# -- the live log ----------------------------------------------------------------------------


def test_live_log_verifies(verifylog: Path, live: Log) -> None:
    """Tiles, root, each tile-derived and served proof, and consistency with the older
    checkpoint, for an entry in the full first tile, one in the partial last tile and the last
    request's entry."""
    _, checkpoint = live_note(live)
    assert checkpoint.size > 256 > live.older_size
    for index in (live.indices[0], 256, live.indices[-1]):
        summary = passes(
            run(verifylog, live.url, live.vkey, "-entry", str(index), "-old", str(live.older))
        )
        assert summary["origin"] == ORIGIN
        assert summary["entry"] == index and summary["consistent_with"] == live.older_size
        assert summary["size"] == checkpoint.size
        assert summary["root"] == base64.b64encode(checkpoint.root).decode()
        assert summary["cosigners"] == []


def test_wrong_log_key_fails(verifylog: Path, live: Log) -> None:
    fails(
        run(verifylog, live.url, other_key_vkey()[1]),
        "checkpoint: note has no verifiable signatures",
    )


def test_checkpoint_signed_by_another_key_fails(verifylog: Path, live: Log, proxy: Proxy) -> None:
    note, _ = live_note(live)
    proxy.checkpoint = sign_note(text_of(note), other_key_vkey()[0])
    fails(run(verifylog, proxy.url, live.vkey), "checkpoint: note has no verifiable signatures")


def test_root_the_tiles_do_not_give_fails(verifylog: Path, live: Log, proxy: Proxy) -> None:
    """The log's own key signing a root that is not its tree's."""
    _, checkpoint = live_note(live)
    forged = dataclasses.replace(checkpoint, root=bytes(32))
    proxy.checkpoint = sign_note(forged.body(), live.signer)
    fails(run(verifylog, proxy.url, live.vkey), "tiles")


@pytest.mark.parametrize(
    ("path", "offset", "reason"),
    [
        # a full tile: the entry's proof is made from it
        ("tile/0/000", 5 * 32, "the served bytes are not leaf {entry} (proof from tiles)"),
        # the partial right edge and the level-1 tile the root is computed from
        ("tile/0/001.p/", 0, "tiles: downloaded inconsistent tile"),
        ("tile/1/000.p/", 31, "tiles: downloaded inconsistent tile"),
        # the entry's own bytes, and the bundle holding it
        ("entries/", 40, "the served bytes are not leaf {entry}"),
        ("tile/entries/000", 40, "entry bundle 0: entry 0 is not leaf 0"),
    ],
)
def test_tampered_response_fails(
    verifylog: Path, live: Log, proxy: Proxy, path: str, offset: int, reason: str
) -> None:
    _, checkpoint = live_note(live)
    if path.endswith(".p/"):
        path += str(checkpoint.size % 256 if path.startswith("tile/0") else checkpoint.size // 256)
    entry = live.indices[1]
    assert 5 < entry < 256  # in the full first tile, after the hash changed below
    if path == "entries/":
        path += str(entry)
    proxy.checkpoint = httpx.get(f"{live.url}/checkpoint", timeout=5).text
    args = ("-entry", str(entry))
    passes(run(verifylog, proxy.url, live.vkey, *args))  # the same run, untampered
    proxy.tamper[path] = flip(offset)
    fails(run(verifylog, proxy.url, live.vkey, *args), reason.format(entry=entry))


def test_entry_changed_in_bundle_and_tile_fails(verifylog: Path, live: Log, proxy: Proxy) -> None:
    """A request's entry changed in its bundle and its leaf hash changed to match in the level-0
    tile: bundle and tile agree, and the entry's own proof (which never uses its own hash) still
    holds, but the proofs of the bundle's other entries use it."""
    entry = live.indices[1]
    assert 0 < entry < 256
    proxy.checkpoint = httpx.get(f"{live.url}/checkpoint", timeout=5).text
    bundle = httpx.get(f"{live.url}/tile/entries/000", timeout=5).content
    changed, offset = bytearray(bundle), 0
    for _ in range(entry):  # C2SP tlog-tiles entry bundle: u16 length, then the entry
        offset += 2 + int.from_bytes(bundle[offset : offset + 2], "big")
    length = int.from_bytes(bundle[offset : offset + 2], "big")
    changed[offset + 2 + 20] ^= 0x01
    leaf = hashlib.sha256(b"\x00" + changed[offset + 2 : offset + 2 + length]).digest()

    def tile(body: bytes) -> bytes:  # RFC 9162 §2.1.1 leaf hash, in the entry's slot
        return body[: entry * 32] + leaf + body[(entry + 1) * 32 :]

    proxy.tamper["tile/entries/000"] = lambda _: bytes(changed)
    proxy.tamper["tile/0/000"] = tile
    done = run(verifylog, proxy.url, live.vkey, "-entry", str(entry))
    fails(done, "entry bundle 0: entry 0 is not leaf 0")


def test_forked_older_checkpoint_fails(verifylog: Path, live: Log, tmp_path: Path) -> None:
    """An older checkpoint the log signed for another history (a split view) is caught by the
    consistency proof; one larger than the live tree is a rollback."""
    older = Checkpoint.parse(text_of(live.older.read_text()))
    fork = tmp_path / "fork"
    fork.write_text(sign_note(dataclasses.replace(older, root=bytes(32)).body(), live.signer))
    fails(run(verifylog, live.url, live.vkey, "-old", str(fork)), "not a prefix")
    ahead = tmp_path / "ahead"
    ahead.write_text(sign_note(dataclasses.replace(older, size=1 << 40).body(), live.signer))
    fails(run(verifylog, live.url, live.vkey, "-old", str(ahead)), "rolled back")


# -- cosignatures (C2SP tlog-cosignature, cosignature/v1) --------------------------------------


@pytest.fixture(scope="module")
def witnesses() -> list[Cosigner]:
    return [Cosigner.from_text(generate_witness_key(f"witness-{n}.test")) for n in "abc"]


def cosigned(note: str, *cosigners: Cosigner, timestamp: int = 1_767_225_600) -> str:
    """The log's note with a cosignature/v1 line from each of `cosigners` appended."""
    return note + "".join(c.cosign(text_of(note), timestamp) for c in cosigners)


def with_changed_cosignature(note: str, witness: Cosigner, byte: int) -> str:
    """`note` with one byte of `witness`'s cosignature changed: 4..11 is the timestamp, 12.. the
    Ed25519 signature (after the 4-byte key id)."""
    lines = note.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(f"— {witness.name} "):
            raw = bytearray(base64.b64decode(line.rpartition(" ")[2]))
            raw[byte] ^= 0x01
            lines[i] = f"— {witness.name} {base64.b64encode(bytes(raw)).decode()}"
    return "\n".join(lines)


def witness_args(*cosigners: Cosigner, quorum: int) -> list[str]:
    args = [f"-quorum={quorum}"]
    for c in cosigners:
        args += ["-witness", c.verifier.text]
    return args


def test_cosigned_checkpoint_meets_quorum(
    verifylog: Path, live: Log, proxy: Proxy, witnesses: list[Cosigner]
) -> None:
    """Two known witnesses meet a quorum of two and not of three; the third line, from a key the
    verifier does not know, is ignored (tlog-witness: "MUST ignore ... unknown keys")."""
    a, b, unknown = witnesses
    note, _ = live_note(live)
    proxy.checkpoint = cosigned(note, a, b, unknown)
    summary = passes(run(verifylog, proxy.url, live.vkey, *witness_args(a, b, quorum=2)))
    assert summary["cosigners"] == [a.name, b.name]
    fails(
        run(verifylog, proxy.url, live.vkey, *witness_args(a, b, quorum=3)),
        "2 valid cosignature(s) from known witnesses, quorum is 3",
    )
    # Knowing a third witness that did not cosign does not make up the quorum either.
    other = Cosigner.from_text(generate_witness_key("witness-d.test"))
    fails(
        run(verifylog, proxy.url, live.vkey, *witness_args(a, b, other, quorum=3)),
        "quorum is 3",
    )


def test_one_witness_counts_once(
    verifylog: Path, live: Log, proxy: Proxy, witnesses: list[Cosigner]
) -> None:
    a, b, _ = witnesses
    note, _ = live_note(live)
    proxy.checkpoint = cosigned(note, a) + a.cosign(text_of(note), 1_767_225_601)
    fails(run(verifylog, proxy.url, live.vkey, *witness_args(a, b, quorum=2)), "quorum is 2")


@pytest.mark.parametrize(("byte", "what"), [(11, "timestamp"), (40, "signature")])
def test_changed_cosignature_fails(
    verifylog: Path, live: Log, proxy: Proxy, witnesses: list[Cosigner], byte: int, what: str
) -> None:
    a, b, _ = witnesses
    note, _ = live_note(live)
    proxy.checkpoint = with_changed_cosignature(cosigned(note, a, b), b, byte)
    fails(
        run(verifylog, proxy.url, live.vkey, *witness_args(a, b, quorum=1)),
        f"invalid signature for key {b.name}",
    )


def test_cosignature_of_another_checkpoint_fails(
    verifylog: Path, live: Log, proxy: Proxy, witnesses: list[Cosigner]
) -> None:
    """A witness's line moved from the older checkpoint onto the live one."""
    a, b, _ = witnesses
    note, _ = live_note(live)
    moved = a.cosign(text_of(live.older.read_text()), 1_767_225_600)
    proxy.checkpoint = cosigned(note, b) + moved
    fails(
        run(verifylog, proxy.url, live.vkey, *witness_args(a, b, quorum=1)),
        f"invalid signature for key {a.name}",
    )


def test_cosignatures_without_the_log_signature_fail(
    verifylog: Path, live: Log, proxy: Proxy, witnesses: list[Cosigner]
) -> None:
    a, b, _ = witnesses
    note, _ = live_note(live)
    text = text_of(note)
    proxy.checkpoint = text + "\n" + a.cosign(text, 1) + b.cosign(text, 1)
    fails(
        run(verifylog, proxy.url, live.vkey, *witness_args(a, b, quorum=2)),
        "not signed by the log's key",
    )


# -- end to end: cosignatures from `clearance witness serve` ------------------------------------


@contextlib.contextmanager
def witnesses_serving(
    directory: Path, names: list[str], log_vkey: str
) -> Iterator[list[tuple[str, str]]]:
    """`clearance witness keygen` and `clearance witness serve` for the live log, one serving
    process per name, started together; yields each witness's URL and verifier key."""
    found: list[tuple[str, str]] = []
    servers: list[subprocess.Popen[bytes]] = []
    try:
        for name in names:
            (directory / name).mkdir()
            key = directory / name / "witness.key"
            keygen = CliRunner().invoke(cli_app, ["witness", "keygen", name, "--out", str(key)])
            assert keygen.exit_code == 0, keygen.output
            port = free_port()
            command = [CLEARANCE, "witness", "serve", "--key", str(key), "--port", str(port)]
            servers.append(
                subprocess.Popen(
                    [*command, "--data", str(directory / name), "--log", f"{ORIGIN}={log_vkey}"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            found.append((f"http://127.0.0.1:{port}", keygen.output.strip().splitlines()[-1]))
        deadline = time.monotonic() + 30
        for server, (url, _) in zip(servers, found, strict=True):
            address = ("127.0.0.1", int(url.rpartition(":")[2]))
            while True:
                with contextlib.suppress(OSError), socket.create_connection(address, 1):
                    break
                assert server.poll() is None, "clearance witness serve exited"
                assert time.monotonic() < deadline, "clearance witness serve did not start"
                time.sleep(0.05)
        yield found
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)


def add_checkpoint(witness: str, old: int, proof: list[str], note: str) -> str:
    """C2SP tlog-witness: POST /add-checkpoint with the size the witness last cosigned, the
    consistency proof from it, a blank line and the signed checkpoint; 200 is the cosignature."""
    body = f"old {old}\n" + "".join(f"{h}\n" for h in proof) + "\n" + note
    response = httpx.post(f"{witness}/add-checkpoint", content=body.encode(), timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def test_witnesses_of_our_own_cosign_what_go_verifies(
    verifylog: Path, live: Log, proxy: Proxy, tmp_path: Path
) -> None:
    """Two `clearance witness serve` (different keys) each cosign the older checkpoint, then the
    live one with a consistency proof from it; the note with both lines meets a quorum of 2."""
    older_note = live.older.read_text()
    note, checkpoint = live_note(live)
    names = ["witness-1.test", "witness-2.test"]
    with witnesses_serving(tmp_path, names, live.vkey) as [(w1, vkey1), (w2, vkey2)]:
        consistency = httpx.get(
            f"{live.url}/proof/consistency",
            params={"first": live.older_size, "second": checkpoint.size},
            timeout=5,
        ).json()["hashes"]
        lines = ""
        for witness in (w1, w2):
            add_checkpoint(witness, 0, [], older_note)
            lines += add_checkpoint(witness, live.older_size, consistency, note)
    proxy.checkpoint = note + lines
    keys = ["-witness", vkey1, "-witness", vkey2]
    summary = passes(run(verifylog, proxy.url, live.vkey, *keys, "-quorum=2"))
    assert summary["cosigners"] == names
    assert summary["size"] == checkpoint.size
    fails(run(verifylog, proxy.url, live.vkey, *keys[:2], "-quorum=2"), "quorum is 2")


def test_gateway_serves_what_go_verifies_with_witnesses(
    verifylog: Path, tmp_path: Path, _sqlite_template: Path
) -> None:
    """The whole path: a gateway with `[[audit.witnesses]]` (two `clearance witness serve`) and
    `witness_quorum = 2` serves cosigned checkpoints at /audit/checkpoint; Go verifies one with
    a quorum of 2, an entry in it, and its consistency with an earlier cosigned checkpoint."""
    shutil.copyfile(_sqlite_template, tmp_path / "clearance.db")
    _, config = make_instance(f"sqlite:///{tmp_path / 'clearance.db'}", tmp_path / "i")
    vkey = CliRunner().invoke(cli_app, ["audit", "key", "--config", str(config)]).output
    vkey = vkey.strip().splitlines()[-1]
    names = ["witness-1.test", "witness-2.test"]
    with (
        witnesses_serving(tmp_path, names, vkey) as found,
        serve_in_thread(demo_upstream_app(chunk_delay=0.0), lifespan="off") as upstream_url,
    ):
        tables = "".join(
            f'\n[[audit.witnesses]]\nurl = "{url}"\nvkey = "{key}"\n' for url, key in found
        )
        text = config.read_text().replace("[audit]\n", "[audit]\nwitness_quorum = 2\n", 1)
        config.write_text(text + tables)
        settings = load_settings(config, environ={})
        settings = dataclasses.replace(
            settings, audit=dataclasses.replace(settings.audit, checkpoint_interval_seconds=0.05)
        )
        engine = connect(settings.database_url)
        keys = seed(engine, settings, upstream_url)
        engine.dispose()
        app = create_app(settings)
        with serve_in_thread(app, http=DeadlineProtocol) as url:
            running = Running(url, upstream_url, keys, settings, config, app=app)
            client = running.openai(running.key("sven"))

            def request() -> int:
                raw = client.chat.completions.with_raw_response
                response = raw.create(model="fable-4", messages=HELLO).http_response
                return int(response.headers["clearance-audit-index"])

            older = tmp_path / "older.checkpoint"
            older.write_text(_cosigned_covering(url + "/audit", request(), count=2))
            index = request()
            _cosigned_covering(url + "/audit", index, count=2)
            args = ["-entry", str(index), "-old", str(older), "-quorum=2"]
            for _, key in found:
                args += ["-witness", key]
            summary = passes(run(verifylog, url + "/audit", vkey, *args))
            assert summary["cosigners"] == names and summary["entry"] == index
            older_size = Checkpoint.parse(text_of(older.read_text())).size
            assert summary["consistent_with"] == older_size
            assert isinstance(summary["size"], int) and summary["size"] > index >= older_size
            client.close()


def _cosigned_covering(url: str, index: int, count: int) -> str:
    """The served checkpoint once it covers entry `index` and carries `count` cosignatures."""
    deadline = time.monotonic() + 15
    while True:
        note = httpx.get(f"{url}/checkpoint", timeout=5).text
        checkpoint = Checkpoint.parse(text_of(note))
        lines = note[len(text_of(note)) + 1 :].splitlines()
        if checkpoint.size > index and len(lines) == 1 + count:
            return note
        assert time.monotonic() < deadline, f"no checkpoint with {count} cosignatures: {note}"
        time.sleep(0.05)
