"""Verification as jobs, end to end: the portal of a running gateway queues uploads, real
`clearance worker` processes run them (the real OCR, face and liveness stack), on SQLite and
PostgreSQL. Waits are on the database's state with deadlines, never fixed sleeps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import sqlalchemy as sa

from clearance.identity.tables import identity_cases
from clearance.identity.vault import EvidenceVault
from clearance.jobs import service
from clearance.jobs.models import Job, JobKind, JobState
from clearance.jobs.uploads import staged_ids
from clearance.principals.service import get_user
from clearance.store import connect
from tests.portal import camera
from tests.portal.conftest import Browser, Outbox, Running
from tests.portal.review_cases import Instance

T = TypeVar("T")
EMAIL = "ada.rosenthal@example.org"


def _eventually(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


@pytest.fixture
def inputs(tmp_path: Path) -> camera.Inputs:
    return camera.inputs(tmp_path, datetime.now(UTC).date())


def _upload(browser: Browser, document: bytes, selfie: bytes) -> httpx.Response:
    return browser.post(
        "/portal/verify",
        data={"csrf": browser.csrf("/portal/verify")},
        files={"document": ("passport.jpg", document), "selfie": ("selfie.jpg", selfie)},
    )


def _job_id(response: httpx.Response) -> int:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/portal/verifications/")
    return int(location.rsplit("/", 1)[1])


def _job(gateway: Running, job_id: int) -> Job:
    engine = connect(gateway.settings.database_url)
    try:
        with engine.connect() as conn:
            return service.get(conn, job_id)
    finally:
        engine.dispose()


def _finished(gateway: Running, job_id: int) -> Job | None:
    job = _job(gateway, job_id)
    return job if job.state in (JobState.DONE, JobState.REJECTED) else None


def test_uploads_are_queued_and_a_worker_decides_them(
    gateway: Running,
    browser: Browser,
    outbox: Outbox,
    inputs: camera.Inputs,
    start_worker: Callable[[], subprocess.Popen[bytes]],
) -> None:
    browser.sign_in(EMAIL, outbox, name=inputs.declared_name)
    good = _job_id(_upload(browser, inputs.document.read_bytes(), inputs.selfie.read_bytes()))
    # A JPEG by its first bytes (the portal only sniffs), undecodable: for the worker to refuse.
    corrupt = b"\xff\xd8\xff\xe0" + os.urandom(4000)
    bad = _job_id(_upload(browser, corrupt, inputs.selfie.read_bytes()))

    page = browser.get(f"/portal/verifications/{bad}")
    assert page.status_code == 200
    assert 'data-state="queued" data-position="2"' in page.text
    assert '<meta http-equiv="refresh"' in page.text
    assert browser.get(
        f"/portal/verifications/{good}", headers={"accept": "application/json"}
    ).json() == {"job": good, "state": "queued", "position": 1}

    worker = start_worker()
    done = _eventually(lambda: _finished(gateway, good), 180, "the upload's job finished")
    rejected = _eventually(lambda: _finished(gateway, bad), 60, "the corrupt job finished")

    assert done.state is JobState.DONE and done.case is not None
    followed = browser.get(f"/portal/verifications/{good}")
    assert followed.status_code == 303
    assert followed.headers["location"] == f"/portal/cases/{done.case}"
    case_page = browser.get(followed.headers["location"])
    # Without liveness frames a remote verification waits for a person.
    assert 'class="outcome-review"' in case_page.text, case_page.text

    assert rejected.state is JobState.REJECTED and rejected.case is None
    assert rejected.reason == "the document photo: the image could not be decoded"
    shown = browser.get(f"/portal/verifications/{bad}")
    assert shown.status_code == 200 and "the image could not be decoded" in shown.text
    assert '<meta http-equiv="refresh"' not in shown.text  # finished: no more reloads

    vault = EvidenceVault.open(gateway.settings.identity)
    for job in (done, rejected):  # the staged uploads are gone; the case keeps its own copies
        assert not any(vault.exists(i) for i in staged_ids(job.payload))

    # The runners that did the work yield the CPU to serving workers on a shared host.
    runners = _children(worker.pid)
    assert runners and {_nice(pid) for pid in runners} == {gateway.settings.jobs.nice}
    assert _nice(worker.pid) == 0 and gateway.settings.jobs.nice == 10


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name (proc(5)): [0] is the state."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def _children(pid: int) -> list[int]:
    """The job runners a worker started (multiprocessing's spawn; not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (
                    int(_stat(int(entry.name))[1]) == pid
                    and b"spawn_main" in (entry / "cmdline").read_bytes()
                ):
                    found.append(int(entry.name))
            except (OSError, IndexError):  # gone meanwhile
                continue
    return found


def _nice(pid: int) -> int:
    return int(_stat(pid)[16])  # proc(5) field 19, nice


def test_a_worker_killed_mid_job_leaves_it_to_another_which_completes_it_once(
    gateway: Running,
    browser: Browser,
    outbox: Outbox,
    inputs: camera.Inputs,
    start_worker: Callable[..., subprocess.Popen[bytes]],
) -> None:
    browser.sign_in(EMAIL, outbox, name=inputs.declared_name)
    job_id = _job_id(_upload(browser, inputs.document.read_bytes(), inputs.selfie.read_bytes()))
    first = start_worker()
    _eventually(
        lambda: True if _job(gateway, job_id).state is JobState.RUNNING else None,
        120,
        "the first worker claimed the job",
    )
    os.killpg(first.pid, signal.SIGKILL)  # the worker and its runners, mid-job
    first.wait()
    assert _job(gateway, job_id).state is JobState.RUNNING  # claimed, by nobody alive

    start_worker()
    job = _eventually(lambda: _finished(gateway, job_id), 180, "the second worker finished it")
    assert (job.state, job.attempts) == (JobState.DONE, 2)

    instance = Instance(gateway.settings)
    try:
        with instance.engine.connect() as conn:
            user = get_user(conn, EMAIL)
            cases = conn.execute(
                sa.select(identity_cases.c.id).where(identity_cases.c.user_id == user.id)
            ).all()
        assert [c.id for c in cases] == [job.case]  # one result
        assert len(instance.entries(subject=user.subject_id, method="document")) == 1
    finally:
        instance.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_full_queue_answers_try_again_later(
    gateway: Running, browser: Browser, outbox: Outbox, inputs: camera.Inputs
) -> None:
    browser.sign_in(EMAIL, outbox, name=inputs.declared_name)
    engine = connect(gateway.settings.database_url)
    try:
        with engine.begin() as conn:
            user = get_user(conn, EMAIL).id
            for _ in range(gateway.settings.jobs.max_pending):
                service.enqueue(conn, JobKind.VERIFY_DOCUMENT, {}, user_id=user, max_attempts=3)
    finally:
        engine.dispose()
    refused = _upload(browser, inputs.document.read_bytes(), inputs.selfie.read_bytes())
    assert refused.status_code == 503
    minutes = int(refused.headers["retry-after"]) // 60
    assert minutes >= 1
    assert f"try again in {minutes} minute" in refused.text


def test_the_serving_process_never_loads_the_ocr_and_face_stack() -> None:
    code = (
        "import sys, clearance.app, clearance.cli.serve\n"
        "heavy = ('cv2', 'onnxruntime', 'dlib', 'face_recognition', 'rapidocr_onnxruntime',"
        " 'clearance.identity.document.ocr', 'clearance.identity.biometrics.face',"
        " 'clearance.identity.examine')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
