"""`clearance-verify log` and `monitor` against logs served over real HTTP (the /audit app on
uvicorn): a log of 300 entries has a full tile, a partial one and a level-1 tile. A second log
signed with the same key but holding other entries stands in for a forking operator."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.audit.keys import generate_signing_key, load_signer
from clearance.audit.reader import LogReader
from clearance.audit.routes import audit_app
from clearance.audit.service import AuditLog
from clearance.audit.tables import audit_entries
from clearance.config import AuditSettings
from clearance.net.serving import serve_in_thread
from clearance.store import connect
from tests.audit.conftest import ORIGIN, entry

VERIFY = str(Path(sys.executable).parent / "clearance-verify")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VERIFY, *args], capture_output=True, text=True, timeout=60)


class Logs:
    """Logs sharing one signing key (`audit_settings`), each served on its own port."""

    def __init__(self, template: Path, root: Path, settings: AuditSettings) -> None:
        self.template, self.root, self.settings = template, root, settings
        self.stack = ExitStack()
        self.key = load_signer(settings.signing_key_file).verifier.text

    def new(self, name: str) -> tuple[Engine, AuditLog, str]:
        path = self.root / f"{name}.db"
        shutil.copyfile(self.template, path)
        engine = connect(f"sqlite:///{path}")
        self.stack.callback(engine.dispose)
        log = AuditLog(engine, self.settings)
        self.stack.callback(log.close)
        url = self.stack.enter_context(serve_in_thread(audit_app(engine), lifespan="off"))
        return engine, log, url


@pytest.fixture
def audit_settings(tmp_path: Path) -> AuditSettings:
    key = tmp_path / "audit-signing.key"
    key.write_text(generate_signing_key(ORIGIN) + "\n")
    return AuditSettings(signing_key_file=key, origin=ORIGIN)


@pytest.fixture
def logs(_sqlite_template: Path, tmp_path: Path, audit_settings: AuditSettings) -> Iterator[Logs]:
    found = Logs(_sqlite_template, tmp_path, audit_settings)
    with found.stack:
        yield found


def grow(log: AuditLog, start: int, stop: int, actor: str = "test") -> None:
    log.append_many([entry(i, actor) for i in range(start, stop)])
    log.integrate()  # signs a checkpoint over them


def test_a_live_log_verifies_and_extends_a_kept_checkpoint(logs: Logs, tmp_path: Path) -> None:
    engine, log, url = logs.new("main")
    grow(log, 0, 40)
    kept = tmp_path / "kept.txt"
    kept.write_text(LogReader(engine).checkpoint())
    grow(log, 40, 300)
    done = run("log", url, "--key", logs.key, "--checkpoint", str(kept))
    assert done.returncode == 0, done.stderr
    assert "size 300" in done.stdout
    assert "OK: 300 entries and 3 tiles hash to the signed root" in done.stdout
    assert "the log extends the saved checkpoint at size 40" in done.stdout
    # An entry rewritten in the database behind the log's back: named by index.
    with engine.begin() as conn:
        conn.execute(
            sa.update(audit_entries).where(audit_entries.c.idx == 260).values(entry=entry(-1))
        )
    done = run("log", url, "--key", logs.key)
    assert done.returncode == 1
    assert "FAILED: entry 260: its leaf hash is not the one in tile/0/001.p/44" in done.stderr


def test_a_live_log_under_another_key_or_unreachable(logs: Logs) -> None:
    _, log, url = logs.new("main")
    grow(log, 0, 5)
    name = logs.settings.origin
    other = "+".join([name, "00000000", logs.key.split("+", 2)[2]])
    done = run("log", url, "--key", other)
    assert done.returncode == 2 and "key id does not match the key" in done.stderr
    done = run("log", "http://127.0.0.1:9/audit", "--key", logs.key, "--timeout", "2")
    assert done.returncode == 2 and "GET http://127.0.0.1:9/audit/checkpoint" in done.stderr


def test_monitor_follows_the_log_and_alarms_on_a_fork_and_a_rollback(
    logs: Logs, tmp_path: Path
) -> None:
    _, log, url = logs.new("main")
    state = tmp_path / "monitor.json"
    grow(log, 0, 30)
    first = run("monitor", url, "--key", logs.key, "--state", str(state))
    assert first.returncode == 0, first.stderr
    assert "OK: first round" in first.stdout and json.loads(state.read_text())["size"] == 30
    grow(log, 30, 45)
    second = run("monitor", url, "--key", logs.key, "--state", str(state))
    assert second.returncode == 0, second.stderr
    assert "consistent with size 30 seen before" in second.stdout
    kept = state.read_text()
    assert json.loads(kept)["size"] == 45

    # The same key signs another history, longer than the one the monitor saw: a fork.
    _, fork, fork_url = logs.new("fork")
    grow(fork, 0, 60, actor="fork")
    alarm = run("monitor", fork_url, "--key", logs.key, "--state", str(state))
    assert alarm.returncode == 1
    assert "ALARM: fork: the checkpoint at size 60 does not extend the one at size 45" in (
        alarm.stderr
    )
    assert state.read_text() == kept  # the state keeps what was seen before
    evidence = (tmp_path / "monitor.json.evidence").read_text()
    assert "\n45\n" in evidence and "\n60\n" in evidence

    # ... or the same size with another root, or a shorter log: a rollback.
    _, same, same_url = logs.new("same")
    grow(same, 0, 45, actor="same")
    alarm = run("monitor", same_url, "--key", logs.key, "--state", str(state))
    assert alarm.returncode == 1 and "ALARM: fork:" in alarm.stderr
    assert "two different roots for the same size 45" in alarm.stderr
    _, short, short_url = logs.new("short")
    grow(short, 0, 20)
    alarm = run("monitor", short_url, "--key", logs.key, "--state", str(state))
    assert alarm.returncode == 1
    assert "ALARM: rollback: the log now shows size 20, smaller than size 45 seen before" in (
        alarm.stderr
    )
    assert state.read_text() == kept


def test_monitor_alarms_on_a_fork_that_a_witness_cosigned(logs: Logs, tmp_path: Path) -> None:
    """A witness that cosigns a fork (it colludes with the operator, or lost its state) does not
    hide it: the monitor checks consistency with what it saw, whoever cosigned; the evidence it
    keeps holds the witness's cosignature, proof of the witness's misbehaviour too."""
    from clearance.audit.cosignature import Cosigner, generate_witness_key
    from clearance.audit.tables import audit_checkpoints, audit_cosignatures

    witness = Cosigner.from_text(generate_witness_key("witness.test/colluding"))
    engine, log, url = logs.new("main")
    grow(log, 0, 30)
    state = tmp_path / "monitor.json"
    args = ["--key", logs.key, "--witness", witness.verifier.text, "--quorum", "1"]

    def cosign(engine: Engine) -> None:
        with engine.begin() as conn:
            size, note = conn.execute(
                sa.select(audit_checkpoints.c.size, audit_checkpoints.c.note)
                .order_by(audit_checkpoints.c.size.desc())
                .limit(1)
            ).one()
            text = note.rpartition("\n\n")[0] + "\n"
            conn.execute(
                sa.insert(audit_cosignatures).values(
                    size=size,
                    witness=witness.name,
                    line=witness.cosign(text, 1_800_000_000),
                    cosigned_at=sa.func.now(),
                )
            )

    cosign(engine)
    first = run("monitor", url, *args, "--state", str(state))
    assert first.returncode == 0, first.stderr
    refused = run(
        "monitor",
        url,
        "--key",
        logs.key,
        "--witness",
        witness.verifier.text,
        "--quorum",
        "2",
        "--state",
        str(tmp_path / "other.json"),
    )
    assert refused.returncode != 0  # one witness cannot make a quorum of two

    fork_engine, fork, fork_url = logs.new("fork")
    grow(fork, 0, 40, actor="fork")
    cosign(fork_engine)
    alarm = run("monitor", fork_url, *args, "--state", str(state))
    assert alarm.returncode == 1
    assert "ALARM: fork" in alarm.stderr
    evidence = (tmp_path / "monitor.json.evidence").read_text()
    assert "— witness.test/colluding " in evidence.split("\n40\n", 1)[1]
