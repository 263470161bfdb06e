"""The operator console in Debian's Chromium, headless, driven by Playwright (as test_browser.py).

An operator signs in by the emailed link, opens the console from the portal, sees the dashboard
and the catalog, suspends a model with a reason (the page shows the audit entry), sees the
persona refused, restores the model to 10 % then to everyone, opens a person and the licences.
Every page renders under the console's strict CSP with no violation. Captured at 1280x800; with
CLEARANCE_SCREENSHOTS=DIR set (the docs' images: `docs/console/`) the captures go there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from clearance.portal import operators
from tests.portal.conftest import Outbox, Running
from tests.portal.review_cases import Instance

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (scripts/system-deps)"
)
playwright = pytest.importorskip("playwright.sync_api")

OPERATOR = "dana@demo.test"
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]


@pytest.fixture
def page() -> Iterator[playwright.Page]:
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        tab = browser.new_page(viewport={"width": 1280, "height": 800})
        tab.set_default_timeout(20_000)
        yield tab
        browser.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("CLEARANCE_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the browser, not the database
def test_an_operator_suspends_a_model_and_restores_it_in_phases(
    gateway: Running, page: playwright.Page, outbox: Outbox, shots: Path
) -> None:
    refused: list[str] = []  # Content-Security-Policy violations show up on the console
    page.on("console", lambda m: refused.append(m.text) if "Refused" in m.text else None)
    instance = Instance(gateway.settings)
    try:
        instance.grant(OPERATOR, operators.OPERATOR)
        instance.grant(OPERATOR, operators.REVIEWER)
        instance.review_case()  # something in the queue for the dashboard
    finally:
        instance.close()
    strict = gateway.strict_key("alice")
    gateway.openai(strict).chat.completions.create(model="mythos-5", messages=HELLO)
    portal, console = f"{gateway.url}/portal", f"{gateway.url}/console"

    page.goto(f"{portal}/signin")
    page.fill("#email", OPERATOR)
    page.click("button[type=submit]")
    page.wait_for_selector("#sent")
    page.goto(f"{portal}/signin/link/{outbox.link_for(OPERATOR)}")
    page.click("#confirm")
    page.wait_for_url(f"{portal}/")
    page.click("#console-link a")
    page.wait_for_url(f"{console}/")
    assert int(page.get_attribute("#decisions", "data-total") or 0) >= 1
    page.screenshot(path=str(shots / "dashboard.png"))

    page.click("nav >> text=Models")
    page.wait_for_url(f"{console}/models")
    page.screenshot(path=str(shots / "models.png"))
    page.click('#models tr[data-model="mythos-5"] a')
    page.wait_for_url(f"{console}/models/mythos-5")
    page.fill("#suspend-reason", "incident 7: weights exposure")
    page.screenshot(path=str(shots / "model-suspend.png"))
    page.click("#suspend")
    page.wait_for_selector("#done")
    assert page.get_attribute("#done", "data-action") == "suspend"
    assert page.get_attribute("#model", "data-state") == "suspended"
    page.screenshot(path=str(shots / "model-suspended.png"))
    gateway.poll()
    with pytest.raises(openai.APIStatusError) as blocked:
        gateway.openai(strict).chat.completions.create(model="mythos-5", messages=HELLO)
    assert blocked.value.status_code == 451 and "model-suspended" in blocked.value.message

    page.check("#step-percent")
    page.fill("#percent", "10")
    page.fill("#resume-reason", "canary: 10 % of cleared people")
    page.click("#resume")
    page.wait_for_selector('#model[data-state="restoring"]')
    assert "10 %" in page.inner_text("#state")
    page.screenshot(path=str(shots / "model-restoring.png"))
    page.check("#step-everyone")
    page.fill("#resume-reason", "all clear")
    page.click("#resume")
    page.wait_for_selector('#model[data-state="active"]')
    gateway.poll()
    answer = gateway.openai(strict).chat.completions.with_raw_response.create(
        model="mythos-5", messages=HELLO
    )
    assert answer.headers["clearance-model-served"] == "mythos-5"

    page.click("nav >> text=People")
    page.fill("#q", "alice")
    page.click("#search button")
    page.click("#people a")
    page.wait_for_selector("#person")
    page.screenshot(path=str(shots / "person.png"))
    page.click("nav >> text=Licences")
    page.wait_for_selector('#licences tr[data-state="active"]')
    page.screenshot(path=str(shots / "licences.png"))
    assert refused == []
