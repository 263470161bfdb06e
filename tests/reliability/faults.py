"""Syscall fault injection with strace (Tessera-style): a writer appending to SQLite gets an
I/O error, or SIGKILL, at the Nth call of one syscall; then an offline check of the database.

    strace -f -e inject=fdatasync:error=EIO:when=N   python -m tests.reliability.writer sync ...

The trace (`strace -o`) records every traced call in order, with each acknowledgement the
writer wrote to stdout (one write(2) per line), so the order of fsync and acknowledgement is
read from the kernel's point of view, not the writer's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from typer.testing import CliRunner

from clearance.cli.app import app
from clearance.config import AuditSettings
from clearance.errors import ClearanceError
from clearance.store import connect
from tests.reliability.logs import ORIGIN, check_log, stored_checkpoints

ROOT = Path(__file__).resolve().parents[2]
STRACE = shutil.which("strace")
SYSCALLS = ("fsync", "fdatasync", "pwrite64", "rename")
APPENDS = 12  # the writer integrates (signs) after every 4th append
_CALL = re.compile(r"^\d+\s+(\w+)\((.*)\)\s+= (.*)$")
_STDOUT = re.compile(r'^1(?:<[^>]*>)?, "([A-Z]+)')
_FD_PATH = re.compile(r"^\d+<([^>]*)>")  # strace -y: "6</tmp/dir>"


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    result: str
    said: str | None  # for write(1, ...): the first word the writer said (ACK, FAIL, ...)
    directory: bool = False  # the call's file descriptor is a directory (strace -y)

    @property
    def injected(self) -> bool:
        return "(INJECTED)" in self.result

    @property
    def failed(self) -> bool:
        return self.result.startswith("-1 ")


@dataclass
class FaultRun:
    syscall: str
    action: str  # "EIO" or "KILL"
    when: int  # 0: no injection (baseline)
    returncode: int
    calls: list[Call] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def injected(self) -> bool:
        """The fault hit: a call returned the injected error, or never returned (SIGKILL)."""
        return any(c.name == self.syscall and (c.injected or c.result == "?") for c in self.calls)

    def acks(self) -> dict[int, bytes]:
        pairs = (line.split(" ", 2) for line in self.lines if line.startswith("ACK "))
        return {int(index): data.encode() for _, index, data in pairs}

    def signed(self) -> list[int]:
        return [int(line.split()[1]) for line in self.lines if line.startswith("CKPT ")]

    def acked_after_failure(self, *, directory: bool = False) -> list[str]:
        """Success reported next after a failed (injected) sync or write of a file: must be
        none. With `directory`, after a failed sync of a directory instead: SQLite ignores
        those (it syncs the directory once, when it creates the WAL file)."""
        bad, failing = [], False
        for call in self.calls:
            if call.name != "write":
                failing = failing or (call.injected and call.failed and call.directory == directory)
            elif call.said is not None:
                if failing and call.said in ("ACK", "CKPT"):
                    bad.append(call.said)
                failing = False
        return bad

    def unsynced_acks(self, sync: str = "fdatasync") -> int:
        """Acknowledgements with no successful `sync` since the previous line (must be 0)."""
        count, synced = 0, False
        for call in self.calls:
            if call.name == sync and not call.failed:
                synced = True
            elif call.name == "write" and call.said is not None:
                count += call.said == "ACK" and not synced
                synced = False
        return count


def parse_trace(text: str) -> list[Call]:
    calls = []
    for line in text.splitlines():
        match = _CALL.match(line)
        if match is None:
            continue
        name, args, result = match.groups()
        said = _STDOUT.match(args)
        fd_path = _FD_PATH.match(args)
        directory = fd_path is not None and Path(fd_path.group(1)).is_dir()
        word = said.group(1) if said and name == "write" else None
        calls.append(Call(name, result, word, directory))
    return calls


def run_writer(
    db: Path, settings: AuditSettings, syscall: str, action: str, when: int, workdir: Path
) -> FaultRun:
    """Run the sync writer under strace on `db`; `when` = 0 traces without injecting."""
    assert STRACE is not None, "strace is not installed"
    trace = workdir / f"trace-{syscall}-{action}-{when}.txt"
    inject = ["-e", f"inject={syscall}:{_fault(action)}:when={when}"] if when else []
    traced = ",".join([*SYSCALLS, "write"])
    writer = ["-m", "tests.reliability.writer", "sync", f"sqlite:///{db}"]
    args = [str(settings.signing_key_file), f"{syscall}-{when}", str(APPENDS)]
    # No --seccomp-bpf: with it, strace 6.1 does not deliver an injected signal.
    command = [STRACE, "-f", "-qq", "-y", "-o", str(trace), "-e", f"trace={traced}"]
    done = subprocess.run(
        [*command, "-e", "signal=none", *inject, sys.executable, *writer, *args],
        cwd=ROOT,
        # The traced syscalls are the writer's own: Python caching a module's bytecode would add
        # a rename (and writes) to some runs and not others (`make pytest` lets it cache).
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        timeout=120,
        check=False,
    )
    calls = parse_trace(trace.read_text(errors="replace"))
    run = FaultRun(syscall, action, when, done.returncode, calls)
    run.lines = done.stdout.decode().splitlines()
    return run


def _fault(action: str) -> str:
    return "error=EIO" if action == "EIO" else "signal=KILL"


def call_numbers(run: FaultRun, syscall: str) -> list[int]:
    """1-based ordinals (strace's when=N) of the `syscall` calls a run made before its last line
    ("DONE"): those of the appends and integrations, not of the exit."""
    said = [i for i, c in enumerate(run.calls) if c.said is not None]
    names = [c.name for c in run.calls[: said[-1] if said else 0]]
    return list(range(1, names.count(syscall) + 1))


def cli_verify(url: str, settings: AuditSettings, workdir: Path) -> tuple[int, str]:
    """`clearance audit verify` on the database, as an operator would run it offline."""
    config = workdir / "clearance.toml"
    config.write_text(
        f'[clearance]\ndatabase_url = "{url}"\n\n[audit]\n'
        f'signing_key = "{settings.signing_key_file}"\norigin = "{ORIGIN}"\n'
    )
    result = CliRunner().invoke(app, ["audit", "verify", "--config", str(config)])
    return result.exit_code, result.output


def fresh_copy(template: Path, target: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
        source = template.with_name(template.name + suffix)
        if source.exists():
            shutil.copyfile(source, target.with_name(target.name + suffix))
    return target


def offline_problems(run: FaultRun, db: Path, settings: AuditSettings, workdir: Path) -> list[str]:
    """The offline check after a faulted run; an empty list means the log came through."""
    problems = [f"acknowledged after a failed {run.syscall}" for _ in run.acked_after_failure()]
    url = f"sqlite:///{db}"
    code, output = cli_verify(url, settings, workdir)  # before anything else touches the file
    if code != 0:
        problems.append(f"clearance audit verify failed: {output.strip()}")
    engine = connect(url)
    try:
        stored = {size for size, _ in stored_checkpoints(engine)}
        problems += [
            f"acknowledged checkpoint {n} missing" for n in run.signed() if n not in stored
        ]
        try:
            lost = check_log(engine, settings, run.acks()).lost
        except (AssertionError, ClearanceError) as exc:
            problems.append(f"restart check failed: {exc}")
        else:
            problems += [f"{lost} acknowledged entries lost"] if lost else []
    finally:
        engine.dispose()
    return problems
