"""The phone app's chip API through the running gateway: a signed-in session sends DG1, DG2,
EF.SOD and a selfie as JSON and gets a queued job; every malformed request is refused with the
field and the reason, before anything is stored or queued."""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Callable

import httpx
import pytest
import sqlalchemy as sa

from clearance.audit.service import AuditLog
from clearance.identity import csca
from clearance.identity.service import get_case
from clearance.jobs import chip as chip_jobs
from clearance.jobs import service as jobs
from clearance.jobs.models import Job
from clearance.jobs.tables import jobs as jobs_table
from clearance.store import connect
from tests.fixtures.identity import chip
from tests.portal.conftest import Browser, Outbox, Running

EMAIL = "willeke@example.nl"
SELFIE = (chip.FACES / "collins.jpg").read_bytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def body(passport: chip.Passport, **changes: object) -> dict[str, object]:
    sent: dict[str, object] = {
        "dg1": b64(passport.dg1),
        "dg2": b64(passport.dg2),
        "sod": b64(passport.sod),
        "selfie": b64(SELFIE),
    }
    sent.update(changes)
    return {k: v for k, v in sent.items() if v is not None}


def send(browser: Browser, payload: object, *, csrf: str | None) -> httpx.Response:
    headers = {"x-csrf-token": csrf} if csrf else {}
    return browser.post("/portal/api/chip", json=payload, headers=headers)


def queued(gateway: Running) -> int:
    engine = connect(gateway.settings.database_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(jobs_table)).scalar_one()
            )
    finally:
        engine.dispose()


@pytest.fixture
def session(browser: Browser, outbox: Outbox) -> str:
    browser.sign_in(EMAIL, outbox, name="Willeke Liselotte de Bruijn")
    described = browser.get("/portal/api/chip")
    assert described.status_code == 200
    limits = described.json()["limits"]
    assert limits["sod"] == 65536 and limits["frames"] == 30
    token: str = described.json()["csrf"]
    return token


def test_a_phone_upload_is_queued_as_a_chip_job(
    gateway: Running, browser: Browser, session: str
) -> None:
    response = send(browser, body(chip.passport()), csrf=session)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "queued"
    assert answer["location"] == f"/portal/verifications/{answer['job']}"
    engine = connect(gateway.settings.database_url)
    try:
        with engine.connect() as conn:
            job = jobs.get(conn, answer["job"])
    finally:
        engine.dispose()
    assert chip_jobs.is_chip(job.payload)
    assert set(job.payload["chip"]) == {"dg1", "dg2", "sod"}
    state = browser.get(answer["location"], headers={"accept": "application/json"}).json()
    assert state["state"] == "queued"


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"sod": "not base64!"}, 400, "`sod` is not base64"),
        ({"dg1": None}, 400, "`dg1` is missing"),
        ({"extra": "x"}, 400, "unknown field `extra`"),
        ({"frames": "x"}, 400, "`frames` must be a list"),
        ({"sod": b64(b"\x77\x84\xff\xff\xff\xf0" + b"\x30" * 64)}, 422, "length bomb"),
        ({"sod": b64(b"\x77\x80\x30\x80\x00\x00")}, 422, "indefinite length"),
        ({"dg2": b64(chip.dg2(b"GIF89a" + b"\x00" * 200))}, 422, "neither JPEG nor JPEG 2000"),
        ({"sod": "A" * 200_000}, 413, "`sod` is over 65536 bytes"),
        ({"selfie": b64(b"%PDF-1.7 not an image")}, 415, "not a JPEG, PNG or WebP"),
    ],
)
def test_malformed_requests_are_refused_naming_the_field(
    gateway: Running,
    browser: Browser,
    session: str,
    change: dict[str, object],
    status: int,
    says: str,
) -> None:
    before = queued(gateway)
    response = send(browser, body(chip.passport(), **change), csrf=session)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]
    assert queued(gateway) == before


def test_a_sod_without_the_hash_of_dg2_is_refused_at_once(browser: Browser, session: str) -> None:
    passport = chip.passport()
    assert passport.ds is not None
    passport.sod = chip.sod({1: passport.dg1}, passport.ds)
    response = send(browser, body(passport), csrf=session)
    assert response.status_code == 422
    assert response.json()["code"] == "chip_hash_mismatch"


def test_no_csrf_token_or_no_session_is_refused(
    gateway: Running, browser: Browser, session: str
) -> None:
    assert send(browser, body(chip.passport()), csrf=None).status_code == 403
    stranger = Browser(gateway.url)
    try:
        assert send(stranger, body(chip.passport()), csrf=session).status_code == 401
    finally:
        stranger.close()
    assert send(browser, [1, 2], csrf=session).status_code == 400


def _finished(gateway: Running, job_id: int) -> Job | None:
    engine = connect(gateway.settings.database_url)
    try:
        with engine.connect() as conn:
            job = jobs.get(conn, job_id)
    finally:
        engine.dispose()
    return job if job.state.value in ("done", "rejected") else None


def _eventually(gateway: Running, job_id: int, timeout: float) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = _finished(gateway, job_id)
        if job is not None:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish within {timeout} s")


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_worker_verifies_the_chip_and_rejects_a_forged_one(
    gateway: Running,
    browser: Browser,
    session: str,
    start_worker: Callable[[], subprocess.Popen[bytes]],
) -> None:
    """The whole path: the app's POST, a real `clearance worker`, the case page."""
    engine = connect(gateway.settings.database_url)
    audit = AuditLog(engine, gateway.settings.audit)
    try:
        csca.load(engine, audit, chip.pem([chip.default_csca().cert]), actor="cli:test")
    finally:
        audit.close()
        engine.dispose()
    good = send(browser, body(chip.passport()), csrf=session).json()["job"]
    forged = chip.passport()
    forged.dg1 = chip.dg1(chip.mrz_lines(surname="MALLORY"))
    bad = send(browser, body(forged), csrf=session).json()["job"]
    start_worker()
    done = _eventually(gateway, good, 180)
    rejected = _eventually(gateway, bad, 60)
    assert done.case is not None and rejected.case is not None
    engine = connect(gateway.settings.database_url)
    try:
        with engine.connect() as conn:
            genuine, forgery = get_case(conn, done.case), get_case(conn, rejected.case)
    finally:
        engine.dispose()
    # Remote without liveness frames: a person looks, for that reason alone.
    assert (genuine.source, genuine.assurance, genuine.reasons) == (
        "chip",
        "chip",
        ("liveness_missing",),
    )
    assert genuine.face is not None and genuine.face.distance < 0.5
    assert forgery.status.value == "rejected"
    assert forgery.reasons == ("chip_hash_mismatch",)
    page = browser.get(f"/portal/cases/{rejected.case}")
    assert page.status_code == 200
