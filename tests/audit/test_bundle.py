"""`clearance audit export`: a bundle for one persona, verified by the standalone
`clearance-verify` in a process of its own; then each tampering fails naming what is wrong."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Engine
from typer.testing import CliRunner, Result

from clearance.audit import entries
from clearance.audit.keys import load_signer
from clearance.audit.reader import LogReader
from clearance.audit.service import AuditLog
from clearance.cli.app import app
from clearance.config import Settings
from clearance.demo.run import seed
from clearance.errors import NotFound
from clearance.identity.service import erase_evidence
from clearance.identity.vault import EvidenceVault, generate_master_key, parse_master_key
from clearance.principals.service import get_user
from clearance.store import connect, reading
from tests.gateway.conftest import make_instance

VERIFY = str(Path(sys.executable).parent / "clearance-verify")
JAN = datetime(2026, 1, 10, tzinfo=UTC)
FEB = datetime(2026, 2, 10, tzinfo=UTC)


@dataclass(frozen=True)
class Instance:
    settings: Settings
    config: Path
    engine: Engine
    subjects: dict[str, str]  # persona email -> pseudonym
    key: str  # the log's verifier key, as the operator publishes it

    def export(self, out: Path, *args: str) -> Result:
        return CliRunner().invoke(
            app, ["audit", "export", *args, "--out", str(out), "--config", str(self.config)]
        )


def decision(subject: str, model: str, *, deny: bool, time: datetime) -> bytes:
    """An access decision as the gateway records it (entries.access_decision)."""
    return entries.access_decision(
        subject=subject,
        key_id="key_test",
        surface="openai",
        endpoint="/v1/chat/completions",
        stream=False,
        model_requested=model,
        model_served=None if deny else model,
        effect="deny" if deny else "allow",
        rules=("controlled-foreign-person",) if deny else ("authenticated-principal",),
        policy_hash="sha256:test",
        facts_digest="sha256:facts",
        facts_version="1",
        action="inference",
        ip_country="SE",
        outcome="denied" if deny else "forwarding",
        status=451 if deny else None,
        reason="controlled-foreign-person" if deny else None,
        time=time,
    )


@pytest.fixture(scope="module")
def instance(
    tmp_path_factory: pytest.TempPathFactory, _sqlite_template: Path
) -> Iterator[Instance]:
    """The demo's personas and catalog, then decisions for Sven (denied mythos-5 in January,
    allowed fable-4 in February), Alice and Erik, and an identity decision for Sven."""
    root = tmp_path_factory.mktemp("bundle")
    shutil.copyfile(_sqlite_template, root / "clearance.db")
    settings, config = make_instance(f"sqlite:///{root / 'clearance.db'}", root / "instance")
    engine = connect(settings.database_url)
    seed(engine, settings, "http://127.0.0.1:9")
    with reading(engine) as conn:
        subjects = {
            email: get_user(conn, email).subject_id
            for email in ("sven@demo.test", "alice@demo.test", "erik@demo.test", "nina@demo.test")
        }
    sven, alice, erik = (subjects[f"{p}@demo.test"] for p in ("sven", "alice", "erik"))
    log = AuditLog(engine, settings.audit)
    log.append_many(
        [
            entries.identity_decision(
                subject=sven,
                outcome="verified",
                method="document",
                evidence_digest="sha256:evidence",
                us_person="none",
                assurance="substantial",
                time=JAN,
            ),
            decision(sven, "mythos-5", deny=True, time=JAN),
            decision(alice, "mythos-5", deny=False, time=JAN),
            decision(sven, "fable-4", deny=False, time=FEB),
            decision(erik, "fable-5", deny=False, time=FEB),
        ]
    )
    log.close()  # integrates and signs a checkpoint over every entry
    key = load_signer(settings.audit.signing_key_file).verifier.text
    yield Instance(settings, config, engine, subjects, key)
    engine.dispose()


def verify(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VERIFY, "bundle", str(directory), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def pdf_text(data: bytes) -> str:
    """The text drawn on the PDF's pages (fpdf2 deflates each content stream)."""
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S)
    out = []
    for stream in streams:
        try:
            drawn = zlib.decompress(stream).decode("latin-1")
            out.append(drawn.replace("\\(", "(").replace("\\)", ")"))
        except zlib.error:
            continue
    return "\n".join(out)


@pytest.fixture(scope="module")
def sven_bundle(instance: Instance, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "sven"
    done = instance.export(out, "--email", "sven@demo.test", "--format", "pdf")
    assert done.exit_code == 0, done.output
    return out


def test_bundle_for_one_persona_verifies_with_the_standalone_verifier(
    instance: Instance, sven_bundle: Path
) -> None:
    manifest = json.loads((sven_bundle / "manifest.json").read_text())
    reader = LogReader(instance.engine)
    indices = [e["index"] for e in manifest["entries"]]
    # Sven's seeding entry, his identity decision and his two access decisions; nobody else's.
    assert len(indices) == 4 and manifest["counts"]["entries"] == 4
    for index in indices:
        stored = reader.entry(index)
        assert (sven_bundle / f"entries/{index}.json").read_bytes() == stored
        assert json.loads(stored)["subject"] == instance.subjects["sven@demo.test"]
    assert (sven_bundle / "checkpoint.txt").read_text() == reader.checkpoint()
    assert manifest["filter"] == {
        "subject": instance.subjects["sven@demo.test"],
        "email": "sven@demo.test",
    }
    done = verify(sven_bundle, "--key", instance.key)
    assert done.returncode == 0, done.stderr
    assert "OK: 4 entries verified against the checkpoint" in done.stdout
    text = pdf_text((sven_bundle / "report.pdf").read_bytes())
    for wanted in (
        "Sven Lindqvist",
        "controlled-foreign-person",
        "15 CFR 734.13(a)(2)",  # the rule's legal basis, from the policy pack
        "document",  # the identity verification method, and its date
        "2026-01-10",
        "Decisions by effect and rule",
    ):
        assert wanted in text, wanted


def test_the_bundles_own_keys_verify_but_say_so(sven_bundle: Path) -> None:
    done = verify(sven_bundle)
    assert done.returncode == 0, done.stderr
    assert "checking with the keys inside the bundle" in done.stderr


def _rehash(directory: Path, *names: str) -> None:
    """What a careful forger does after changing a file: fix the manifest's hash of it."""
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    for name in names:
        manifest["files"][name] = hashlib.sha256((directory / name).read_bytes()).hexdigest()
    path.write_text(json.dumps(manifest))


def _copy(bundle: Path, tmp_path: Path) -> tuple[Path, list[int]]:
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    return copy, [e["index"] for e in manifest["entries"]]


def test_one_byte_changed_in_an_entry(
    instance: Instance, sven_bundle: Path, tmp_path: Path
) -> None:
    copy, indices = _copy(sven_bundle, tmp_path)
    i = indices[-1]
    path = copy / f"entries/{i}.json"
    stored = path.read_bytes()
    assert b'"fable-4"' in stored
    path.write_bytes(stored.replace(b'"fable-4"', b'"fable-5"', 1))  # one byte
    done = verify(copy, "--key", instance.key)
    assert done.returncode == 1
    assert f"FAILED: entries/{i}.json: its SHA-256 does not match the manifest" in done.stderr
    assert f"FAILED: entry {i}: entries/{i}.json with proofs/{i}.json:" in done.stderr
    _rehash(copy, f"entries/{i}.json")  # the deeper check stands alone
    done = verify(copy, "--key", instance.key)
    assert done.returncode == 1 and "SHA-256" not in done.stderr
    assert f"entry {i}: entries/{i}.json with proofs/{i}.json: the inclusion proof" in done.stderr


def test_a_proof_for_another_index(instance: Instance, sven_bundle: Path, tmp_path: Path) -> None:
    copy, indices = _copy(sven_bundle, tmp_path)
    i, j = indices[1], indices[2]
    shutil.copyfile(copy / f"proofs/{j}.json", copy / f"proofs/{i}.json")
    _rehash(copy, f"proofs/{i}.json")
    done = verify(copy, "--key", instance.key)
    assert done.returncode == 1
    assert f"FAILED: entry {i}: proofs/{i}.json is the proof for index {j}" in done.stderr
    # The same hashes relabelled with the right index: the path no longer reaches the root.
    proof = json.loads((copy / f"proofs/{i}.json").read_text())
    (copy / f"proofs/{i}.json").write_text(json.dumps({**proof, "index": i}))
    _rehash(copy, f"proofs/{i}.json")
    done = verify(copy, "--key", instance.key)
    assert done.returncode == 1
    assert f"FAILED: entry {i}: entries/{i}.json with proofs/{i}.json" in done.stderr


def _forged_key(name: str) -> tuple[Ed25519PrivateKey, bytes, str]:
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes_raw()
    key_id = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
    encoded = base64.b64encode(b"\x01" + public).decode()
    vkey = f"{name}+{key_id.hex()}+{encoded}"
    return private, key_id, vkey


def test_a_checkpoint_signed_by_another_key(
    instance: Instance, sven_bundle: Path, tmp_path: Path
) -> None:
    copy, _ = _copy(sven_bundle, tmp_path)
    name = instance.settings.audit.origin
    private, key_id, vkey = _forged_key(name)
    body = (copy / "checkpoint.txt").read_text().partition("\n\n")[0] + "\n"
    signature = base64.b64encode(key_id + private.sign(body.encode())).decode()
    (copy / "checkpoint.txt").write_text(f"{body}\n\u2014 {name} {signature}\n")
    keys = json.loads((copy / "keys.json").read_text())
    (copy / "keys.json").write_text(json.dumps({**keys, "log": vkey}))  # the forger's own key
    _rehash(copy, "checkpoint.txt", "keys.json")
    done = verify(copy, "--key", instance.key)  # the auditor's key, obtained independently
    assert done.returncode == 1
    real = instance.key.split("+")[1]
    assert (
        f"FAILED: checkpoint.txt: no signature by the log key {name}+{real} "
        f"(signed by: {name}+{key_id.hex()})"
    ) in done.stderr
    assert f"the bundle names log key {name}+{key_id.hex()}" in done.stderr


def test_a_removed_file(instance: Instance, sven_bundle: Path, tmp_path: Path) -> None:
    copy, indices = _copy(sven_bundle, tmp_path)
    i = indices[0]
    (copy / f"entries/{i}.json").unlink()
    done = verify(copy, "--key", instance.key)
    assert done.returncode == 1
    assert f"FAILED: entries/{i}.json: listed in the manifest but missing" in done.stderr
    assert f"FAILED: entry {i}: entries/{i}.json cannot be read" in done.stderr


def test_a_manifest_hash_mismatch(instance: Instance, sven_bundle: Path, tmp_path: Path) -> None:
    copy, _ = _copy(sven_bundle, tmp_path)
    report = copy / "report.pdf"
    report.write_bytes(report.read_bytes() + b"%")
    (copy / "extra.txt").write_text("slipped in")
    done = verify(copy, "--key", instance.key)
    assert done.returncode == 1
    assert "FAILED: report.pdf: its SHA-256 does not match the manifest" in done.stderr
    assert "FAILED: extra.txt: in the bundle but not listed in the manifest" in done.stderr
    assert "entries verified" not in done.stdout


def _cosign(note: str, name: str, timestamp: int) -> tuple[str, str]:
    """A cosignature/v1 line by a fresh witness key, written here from C2SP tlog-cosignature."""
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes_raw()
    key_id = hashlib.sha256(name.encode() + b"\n\x04" + public).digest()[:4]
    text = note.partition("\n\n")[0] + "\n"
    signature = private.sign(f"cosignature/v1\ntime {timestamp}\n{text}".encode())
    line = base64.b64encode(key_id + timestamp.to_bytes(8, "big") + signature).decode()
    encoded = base64.b64encode(b"\x04" + public).decode()
    vkey = f"{name}+{key_id.hex()}+{encoded}"
    return f"\u2014 {name} {line}\n", vkey


def test_witness_cosignatures_and_quorum(
    instance: Instance, sven_bundle: Path, tmp_path: Path
) -> None:
    copy, _ = _copy(sven_bundle, tmp_path)
    note = (copy / "checkpoint.txt").read_text()
    line_a, witness_a = _cosign(note, "witness.example/a", 1_767_225_600)
    _, witness_b = _cosign(note, "witness.example/b", 1_767_225_600)
    (copy / "checkpoint.txt").write_text(note + line_a)
    _rehash(copy, "checkpoint.txt")
    ok = verify(copy, "--key", instance.key, "--witness", witness_a, "--witness", witness_b,
                "--quorum", "1")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "cosigned by witness.example/a" in ok.stdout
    short = verify(copy, "--key", instance.key, "--witness", witness_a, "--witness", witness_b)
    assert short.returncode == 1
    label_b = "+".join(witness_b.split("+")[:2])
    assert f"1 of the 2 witness cosignatures required (none valid from: {label_b})" in (
        short.stderr
    )
    # A cosignature whose timestamp was changed no longer verifies, naming the witness.
    raw = bytearray(base64.b64decode(line_a.split(" ")[2]))
    raw[11] ^= 1
    bad = f"\u2014 witness.example/a {base64.b64encode(bytes(raw)).decode()}\n"
    (copy / "checkpoint.txt").write_text(note + bad)
    _rehash(copy, "checkpoint.txt")
    done = verify(copy, "--key", instance.key, "--witness", witness_a, "--quorum", "1")
    label_a = "+".join(witness_a.split("+")[:2])
    assert done.returncode == 1
    assert f"cosignature of witness {label_a} is invalid" in done.stderr


def test_csv_and_jsonl_forms(instance: Instance, tmp_path: Path) -> None:
    done = instance.export(tmp_path / "csv", "--email", "sven@demo.test", "--format", "csv")
    assert done.exit_code == 0, done.output
    rows = (tmp_path / "csv/entries.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and rows[0].startswith("index,time,type,subject,effect")
    summary = (tmp_path / "csv/summary.csv").read_text()
    assert "Decisions by effect and rule,deny,controlled-foreign-person,1," in summary
    assert "15 CFR 734.13" in summary
    assert verify(tmp_path / "csv", "--key", instance.key).returncode == 0
    done = instance.export(tmp_path / "jsonl", "--email", "sven@demo.test", "--format", "jsonl")
    assert done.exit_code == 0, done.output
    reader = LogReader(instance.engine)
    for line in (tmp_path / "jsonl/entries.jsonl").read_bytes().splitlines():
        index = json.loads(line)["index"]
        assert line == b'{"index":%d,"entry":%s}' % (index, reader.entry(index))
    text = (tmp_path / "jsonl/summary.txt").read_text()
    assert "Sven Lindqvist <sven@demo.test>" in text
    assert "Identity verification: method and date" in text
    assert verify(tmp_path / "jsonl", "--key", instance.key).returncode == 0


def test_period_org_and_model(instance: Instance, tmp_path: Path) -> None:
    done = instance.export(
        tmp_path / "feb", "--email", "sven@demo.test", "--since", "2026-02-01",
        "--until", "2026-03-01T00:00:00+00:00", "--format", "jsonl",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    lines = (tmp_path / "feb/entries.jsonl").read_bytes().splitlines()
    assert [json.loads(x)["entry"]["model_requested"] for x in lines] == ["fable-4"]
    done = instance.export(tmp_path / "acme", "--org", "Acme Corp", "--format", "csv")
    assert done.exit_code == 0, done.output
    manifest = json.loads((tmp_path / "acme/manifest.json").read_text())
    assert manifest["filter"] == {"org": "Acme Corp", "members": 1}
    erik = instance.subjects["erik@demo.test"]
    subjects = {json.loads((tmp_path / "acme" / f"entries/{e['index']}.json").read_bytes())
                .get("subject") for e in manifest["entries"]}  # fmt: skip
    assert subjects == {erik}
    done = instance.export(tmp_path / "mythos", "--model", "mythos-5", "--format", "csv")
    assert done.exit_code == 0, done.output
    assert json.loads((tmp_path / "mythos/manifest.json").read_text())["counts"]["entries"] == 2


def test_empty_result_is_a_valid_bundle_that_says_so(instance: Instance, tmp_path: Path) -> None:
    out = tmp_path / "none"
    done = instance.export(out, "--model", "no-such-model", "--format", "pdf")
    assert done.exit_code == 0, done.output
    assert "no entries match" in done.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["entries"] == 0 and manifest["entries"] == []
    assert "None: no entry matches this selection" in pdf_text((out / "report.pdf").read_bytes())
    checked = verify(out, "--key", instance.key)
    assert checked.returncode == 0 and "OK: 0 entries" in checked.stdout


def test_bad_input(instance: Instance, tmp_path: Path) -> None:
    """Each refusal is one clear line (the `clearance` entry point prints the error's detail)."""

    def said(done: Result) -> str:
        return done.output + str(done.exception or "")

    done = instance.export(tmp_path / "x", "--email", "nobody@demo.test", "--format", "pdf")
    assert isinstance(done.exception, NotFound)
    assert "unknown user 'nobody@demo.test'" in said(done)
    assert not (tmp_path / "x").exists()
    done = instance.export(tmp_path / "y", "--email", "sven@demo.test", "--model", "fable-4")
    assert done.exit_code != 0 and "exactly one of" in said(done)
    done = instance.export(tmp_path / "z", "--org", "Acme Corp", "--since", "last tuesday")
    assert done.exit_code != 0 and "not an ISO 8601 date" in said(done)
    done = instance.export(tmp_path / "w", "--org", "Acme Corp", "--format", "docx")
    assert done.exit_code != 0 and "one of jsonl, csv, pdf" in said(done)
    (tmp_path / "full").mkdir()
    (tmp_path / "full/file").write_text("x")
    done = instance.export(tmp_path / "full", "--org", "Acme Corp")
    assert done.exit_code != 0 and "not an empty directory" in said(done)


def test_erased_person_appears_by_pseudonym_only(instance: Instance, tmp_path: Path) -> None:
    """Nina asks for erasure (identity/service.py erase_evidence records it in the log); her
    bundle then names her by pseudonym only, while the entries still verify."""
    vault = EvidenceVault(tmp_path / "vault", parse_master_key(generate_master_key()))
    with reading(instance.engine) as conn:
        nina = get_user(conn, "nina@demo.test")
    log = AuditLog(instance.engine, instance.settings.audit)
    try:
        erase_evidence(instance.engine, vault, log, nina.id, actor="cli:test")
    finally:
        log.close()
    out = tmp_path / "nina"
    done = instance.export(out, "--email", "nina@demo.test", "--format", "jsonl")
    assert done.exit_code == 0, done.output
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert b"nina@demo.test" not in everything and b"Nina Novak" not in everything
    assert b"erased on request" in everything and nina.subject_id.encode() in everything
    assert verify(out, "--key", instance.key).returncode == 0
