"""An operator signs in to the console by SSO in Debian's Chromium (issue 17, item 6): the
sign-in page's button, the OpenID Provider of the test suite (oidc_issuer.py: authorization code
with PKCE, the ID token checked by Clearance), the console with the role the provider's group
gives, and a change made there with its audit index. Captured at 1280x800 into
CLEARANCE_SCREENSHOTS when set (docs/console/)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.portal.conftest import Running
from tests.portal.idp import *  # noqa: F403 - its fixtures: issuer, sso_gateway
from tests.portal.oidc_issuer import Issuer, Person
from tests.portal.review_cases import Instance

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (scripts/system-deps)"
)
playwright = pytest.importorskip("playwright.sync_api")

DANA = Person(sub="u-dana", email="dana@corp.test", name="Dana Scully", groups=["compliance"])


@pytest.fixture
def page() -> Iterator[playwright.Page]:
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--no-first-run", "--disable-component-update"],
        )  # fmt: skip
        tab = browser.new_page(viewport={"width": 1280, "height": 800})
        tab.set_default_timeout(20_000)
        yield tab
        browser.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the browser, not the database
def test_an_operator_signs_in_by_sso_and_suspends_a_model(
    sso_gateway: Running, issuer: Issuer, page: playwright.Page, tmp_path: Path
) -> None:
    shots = Path(os.environ.get("CLEARANCE_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    refused: list[str] = []  # Content-Security-Policy violations show up on the console
    page.on("console", lambda m: refused.append(m.text) if "Refused" in m.text else None)
    issuer.login_as = DANA
    # The provider sends the browser back to the configured portal_url; the test's server listens
    # on a port of its own, so that one redirect is pointed at it (cookies do not depend on ports).
    configured = urlsplit(sso_gateway.settings.gateway.portal_url)
    callback = f"{configured.scheme}://{configured.netloc}{configured.path}/signin/sso/callback*"

    def to_test_server(route: playwright.Route) -> None:
        target = urlsplit(route.request.url)
        route.fulfill(
            status=302,
            headers={"location": f"{sso_gateway.url}{target.path}?{target.query}"},
        )

    page.route(callback, to_test_server)
    portal, console = f"{sso_gateway.url}/portal", f"{sso_gateway.url}/console"

    page.goto(f"{portal}/signin")
    page.screenshot(path=str(shots / "sso-signin.png"))
    page.click("a[href$='/signin/sso']")
    page.wait_for_url(f"{console}/")
    assert issuer.authorization_requests[-1]["code_challenge_method"] == "S256"
    page.screenshot(path=str(shots / "sso-dashboard.png"))

    # The provider's group gave the operator role: the kill switch is Dana's to use.
    page.click("nav >> text=Models")
    page.wait_for_url(f"{console}/models")
    page.click("a[href$='/models/fable-4']")
    page.fill("#suspend-reason", "SSO operator drill")
    page.click("#suspend")
    page.wait_for_selector("#done")
    assert int(page.get_attribute("#done", "data-index") or -1) >= 0
    db = Instance(sso_gateway.settings)
    try:
        (suspended,) = db.entries(action="model.suspend")
        (granted,) = db.entries(action="operator.grant")
    finally:
        db.close()
    assert suspended["actor"].startswith("portal:") and granted["details"]["role"] == "operator"
    assert granted["actor"] == f"sso:{issuer.url}"
    assert refused == []
