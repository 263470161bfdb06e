"""End to end in Debian's Chromium, headless, driven by Playwright, with a fake camera.

A new person signs in through the console link, uploads a passport photo and a selfie, takes the
liveness challenge in front of a camera fed from a file, sees the result, creates a key, and the
key reaches a controlled model. Skipped only when /usr/bin/chromium is absent (Debian package
`chromium`, installed by scripts/system-deps); never `playwright install`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.portal import camera
from tests.portal.conftest import Outbox, Running

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (scripts/system-deps)"
)
playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def inputs(tmp_path: Path) -> camera.Inputs:
    return camera.inputs(tmp_path, datetime.now(UTC).date())


@pytest.fixture
def page(inputs: camera.Inputs) -> Iterator[playwright.Page]:
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={inputs.camera}",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        tab = browser.new_page()
        tab.set_default_timeout(20_000)
        yield tab
        browser.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the browser, not the database
def test_a_new_person_verifies_and_gets_a_key_for_a_controlled_model(
    gateway: Running, page: playwright.Page, inputs: camera.Inputs, outbox: Outbox
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
    page.click("#submit")
    page.wait_for_url(f"{portal}/cases/*", timeout=90_000)  # the first run loads the models
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
