"""End to end in Debian's Chromium, headless, driven by Playwright, with a fake camera.

A new person signs in through the console link, uploads a passport photo and a selfie, takes the
liveness challenge in front of a camera fed from a file, sees the result, creates a key, and the
key reaches a controlled model. A reviewer opens a case in review, sees its images (served under
the portal's strict CSP) and decides it. Skipped only when /usr/bin/chromium is absent (Debian
package `chromium`, installed by scripts/system-deps); never `playwright install`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.portal import camera
from tests.portal.conftest import Outbox, Running
from tests.portal.review_cases import NINA, REVIEWER, Instance

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (scripts/system-deps)"
)
playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def inputs(tmp_path: Path) -> camera.Inputs:
    return camera.inputs(tmp_path, datetime.now(UTC).date())


def _chromium(inputs: camera.Inputs | None) -> Iterator[playwright.Page]:
    camera_args = (
        []
        if inputs is None
        else [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={inputs.camera}",
        ]
    )
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                *camera_args,
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        tab = browser.new_page()
        tab.set_default_timeout(20_000)
        yield tab
        browser.close()


@pytest.fixture
def page(inputs: camera.Inputs) -> Iterator[playwright.Page]:
    yield from _chromium(inputs)


@pytest.fixture
def plain_page() -> Iterator[playwright.Page]:
    """Chromium without the fake camera (pages that need none)."""
    yield from _chromium(None)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the browser, not the database
def test_a_new_person_verifies_and_gets_a_key_for_a_controlled_model(
    gateway: Running,
    page: playwright.Page,
    inputs: camera.Inputs,
    outbox: Outbox,
    start_worker: Callable[[], subprocess.Popen[bytes]],
) -> None:
    refused: list[str] = []  # Content-Security-Policy violations show up on the console
    page.on("console", lambda m: refused.append(m.text) if "Refused" in m.text else None)
    email = "ada.rosenthal@example.org"
    portal = f"{gateway.url}/portal"

    page.goto(f"{portal}/signin")
    page.fill("#email", email)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert page.query_selector("#sent"), page.content()
    page.goto(f"{portal}/signin/link/{outbox.link_for(email)}")
    page.fill("#name", inputs.declared_name)
    page.click("#confirm")
    page.wait_for_url(f"{portal}/")
    assert page.get_attribute("#identity", "data-state") == "unverified"

    page.goto(f"{portal}/verify")
    page.set_input_files("#document", str(inputs.document))
    page.set_input_files("#selfie", str(inputs.selfie))
    page.click("#start-challenge")
    page.wait_for_selector("#challenge-state[data-frames]")
    assert int(page.get_attribute("#challenge-state", "data-frames") or 0) >= 10
    start_worker()  # the verification is queued: a worker runs it, loading the models first
    page.click("#submit")
    page.wait_for_url(f"{portal}/verifications/*")
    assert page.get_attribute("#job", "data-state") in ("queued", "running")
    # The job page reloads itself until the case is stored, then sends the browser there.
    page.wait_for_url(f"{portal}/cases/*", timeout=90_000)
    reasons = page.locator("#reasons li").all_inner_texts()
    assert page.inner_text("#outcome") == "verified", reasons

    page.goto(f"{portal}/")
    assert page.get_attribute("#identity", "data-state") == "verified"
    assert page.get_attribute('[data-model="mythos-5"]', "data-effect") == "allow"
    page.goto(f"{portal}/keys")
    page.click("#create-key")
    key = page.input_value("#new-key")
    models = httpx.get(
        f"{gateway.url}/v1/models", headers={"authorization": f"Bearer {key}"}, timeout=30
    )
    assert models.status_code == 200
    assert "mythos-5" in {m["id"] for m in models.json()["data"]}  # controlled, now reachable
    assert refused == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_reviewer_opens_a_case_sees_its_images_and_decides_it(
    gateway: Running, plain_page: playwright.Page, outbox: Outbox
) -> None:
    page = plain_page
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Refused" in m.text else None)
    instance = Instance(gateway.settings)
    try:
        stored = instance.review_case()
        instance.grant()
    finally:
        instance.close()
    portal = f"{gateway.url}/portal"

    page.goto(f"{portal}/signin")
    page.fill("#email", REVIEWER)
    page.click("button[type=submit]")
    page.wait_for_selector("#sent")
    page.goto(f"{portal}/signin/link/{outbox.link_for(REVIEWER)}")
    page.click("#confirm")
    page.wait_for_url(f"{portal}/")
    page.click("#review-link a")
    page.click(f'#queue tr[data-case="{stored.case_id}"] a')
    page.wait_for_url(f"{portal}/review/{stored.case_id}")
    images = page.locator("#evidence img, .frames img")
    assert images.count() == len(stored.images)
    page.wait_for_function(  # every image decoded: served same-origin, allowed by img-src 'self'
        "() => [...document.images].every(i => i.complete && i.naturalWidth === 96)"
    )
    page.check("#outcome-verified")
    page.fill("#note", "portrait, selfie and frames compared by hand")
    page.click("#submit-decision")
    page.wait_for_url(f"{portal}/review?decided={stored.case_id}&outcome=verified")
    assert page.get_attribute("#decided", "data-case") == str(stored.case_id)
    assert page.query_selector(f'#queue tr[data-case="{stored.case_id}"]') is None
    assert NINA not in page.content()
    assert refused == []
