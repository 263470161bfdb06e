"""The operator console in Debian's Chromium, headless, driven by Playwright (as test_browser.py).

An operator signs in by the emailed link, opens the console from the portal, sees the dashboard
and the catalog, suspends a model with a reason (the page shows the audit entry), sees the
persona refused, restores the model to 10 % then to everyone, opens a person and the licences.
Every page renders under the console's strict CSP with no violation. Captured at 1280x800; with
CLEARANCE_SCREENSHOTS=DIR set (the docs' images: `docs/console/`) the captures go there.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from clearance.jobs import service as jobs
from clearance.jobs.key_revocation import KeyRevocations
from clearance.jobs.runner import run_job
from clearance.portal import operators
from clearance.principals import service as principals
from clearance.principals.models import Method, ScreeningStatus, UsPerson
from clearance.screening.models import ListFormat
from clearance.screening.service import load_lists
from tests.portal.conftest import Outbox, Running
from tests.portal.review_cases import Instance
from tests.portal.test_console import served

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


# -- the console's other pages: reviewers, operators and a viewer, each in a browser of their own


REVIEWER = "sven@demo.test"
VIEWER = "luis@demo.test"


@pytest.fixture
def chromium() -> Iterator[playwright.Browser]:
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        yield browser
        browser.close()


class Person:
    """One person's browser (a context of its own: its own cookies), signed in by the emailed
    link; every CSP refusal on its pages is kept."""

    def __init__(
        self, chromium: playwright.Browser, gateway: Running, outbox: Outbox, email: str
    ) -> None:
        self.context = chromium.new_context(viewport={"width": 1280, "height": 800})
        self.context.set_default_timeout(20_000)
        self.page = self.context.new_page()
        self.refused: list[str] = []
        self.page.on(
            "console", lambda m: self.refused.append(m.text) if "Refused" in m.text else None
        )
        self.url = gateway.url
        portal = f"{gateway.url}/portal"
        self.page.goto(f"{portal}/signin")
        self.page.fill("#email", email)
        self.page.press("#email", "Enter")
        self.page.wait_for_selector("#sent")
        self.page.goto(f"{portal}/signin/link/{outbox.link_for(email)}")
        self.page.click("#confirm")
        self.page.wait_for_url(f"{portal}/")

    def open(self, path: str) -> playwright.Page:
        self.page.goto(self.url + path)
        return self.page

    def done(self) -> tuple[int, str]:
        """The audit index and action the page shows after a change."""
        self.page.wait_for_selector("#done")
        index = self.page.get_attribute("#done", "data-index")
        return int(index or -1), self.page.get_attribute("#done", "data-action") or ""

    def post(self, path: str, form: dict[str, str]) -> int:
        """A POST made without the page's forms (as a viewer's crafted request would be),
        with this browser's cookies and a fresh CSRF token: the status the server answers."""
        self.open("/console/")
        token = self.page.get_attribute("input[name=csrf]", "value") or ""
        answer = self.context.request.post(
            self.url + path,
            form={"csrf": token, **form},
            headers={"origin": self.url},
            max_redirects=0,
        )
        return int(answer.status)


def screening_hit(instance: Instance, tmp_path: Path) -> None:
    """A verified US citizen named like a listed person: a hit waiting for a decision."""
    from tests.portal.test_console_screening import LISTED, NAME, PERSON

    with instance.engine.begin() as conn:
        user = principals.add_user(conn, PERSON, name=NAME)
        principals.set_identity(
            conn,
            user.id,
            nationalities=("US",),
            us_person=UsPerson.CITIZEN,
            method=Method.DOCUMENT,
            source="attestation",
            expires=None,
            max_age_days=instance.settings.policy.verification_max_age_days,
        )
    lists = tmp_path / "csl.csv"
    with lists.open("w", newline="") as fh:
        out = csv.DictWriter(fh, fieldnames=list(LISTED[0]))
        out.writeheader()
        out.writerows(LISTED)
    load_lists(instance.engine, [lists], ListFormat.CSL, name="csl", audit=instance.audit)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_reviewers_operators_and_a_viewer_in_the_console(
    gateway: Running, chromium: playwright.Browser, outbox: Outbox, shots: Path, tmp_path: Path
) -> None:
    instance = Instance(gateway.settings)
    people: list[Person] = []
    try:
        instance.grant(REVIEWER, operators.REVIEWER)
        instance.grant(REVIEWER, operators.OPERATOR)  # deciding screening hits is an operator's
        instance.grant(OPERATOR, operators.ADMIN)
        instance.grant(VIEWER, operators.VIEWER)
        case = instance.review_case()
        screening_hit(instance, tmp_path)

        # A reviewer decides an identity case, then a screening hit.
        reviewer = Person(chromium, gateway, outbox, REVIEWER)
        people.append(reviewer)
        page = reviewer.open("/console/")
        page.click("#reviews-link")
        page.wait_for_selector(f'#queue tr[data-case="{case.case_id}"]')
        page.screenshot(path=str(shots / "reviews.png"))
        page.click(f'#queue tr[data-case="{case.case_id}"] a')
        page.wait_for_selector("#decide")
        page.check("#outcome-verified")
        page.fill("#note", "passport and selfie checked side by side")
        page.screenshot(path=str(shots / "review-case.png"))
        page.click("#submit-decision")
        index, action = reviewer.done()
        assert action == "verified"
        decided = f'#decided tr[data-case="{case.case_id}"]'
        assert page.get_attribute(decided, "data-outcome") == "verified"
        assert f"index={index}" in page.inner_html(decided)
        (decision,) = instance.entries(type="identity_decision", outcome="verified")
        assert decision["reviewer"] == instance.grant(REVIEWER, operators.REVIEWER)
        page.screenshot(path=str(shots / "reviews-decided.png"))

        page.click("nav >> text=Screening hits")
        page.wait_for_selector("section.hit")
        page.fill("section.hit textarea[name=reason]", "born 1990, not 1961: another person")
        page.screenshot(path=str(shots / "screening.png"))
        page.click("section.hit button[value=clear]")
        _, action = reviewer.done()
        assert action == "clear"
        with instance.engine.connect() as conn:
            viktor = principals.get_user(conn, "viktor@demo.test")
        assert viktor.screening_status is ScreeningStatus.CLEAR

        # An operator revokes a licence (the licensed persona falls back), reclassifies a model,
        # explores the log, revokes an organisation's keys as a job, makes an admin token.
        erik = gateway.key("erik")
        gateway.poll()
        assert served(gateway, erik, "fable-5") == "fable-5"
        operator = Person(chromium, gateway, outbox, OPERATOR)
        people.append(operator)
        page = operator.open("/console/orgs")
        page.screenshot(path=str(shots / "orgs.png"))
        page.click('#orgs tr[data-org="Acme Corp"] a.licences')
        row = '#licences tr[data-state="active"]'
        page.fill(f"{row} input[name=reason]", "BIS revoked D1234567 on 2026-12-01")
        page.click(f"{row} button")
        _, action = operator.done()
        assert action == "revoke"
        page.screenshot(path=str(shots / "licences-revoked.png"))
        gateway.poll()
        assert served(gateway, erik, "fable-5") == "fable-4"  # no longer licensed: falls back

        page = operator.open("/console/models/fable-4")
        page.check("#reclassify-form input[value=controlled]")
        page.fill("#rationale", "MMLU-Pro 71.2 reported: above the evaluation threshold")
        page.click("#reclassify")
        _, action = operator.done()
        assert action == "reclassify"
        assert "controlled" in page.inner_text("#classification")
        page.screenshot(path=str(shots / "model-reclassified.png"))

        page = operator.open("/console/audit?person=erik%40demo.test")
        instance.audit.integrate()
        page.reload()
        page.wait_for_selector('#entries tr[data-proved="yes"]')
        page.click('#entries tr[data-proved="yes"] td.proof summary')
        page.screenshot(path=str(shots / "audit.png"))

        with instance.engine.begin() as conn:
            for n in range(40):
                principals.create_key(conn, "erik@demo.test", name=f"ci-{n}", allow_fallback=True)
        page = operator.open("/console/keys?org=Acme+Corp")
        page.fill("#revoke-org-reason", "credentials breach at Acme: every key")
        page.screenshot(path=str(shots / "keys.png"))
        page.click("#revoke-org")
        _, action = operator.done()
        assert action == "revoke_org"
        page.screenshot(path=str(shots / "job-queued.png"))
        job_id = int(page.get_attribute("#job", "data-job") or 0)
        job = jobs.claim(instance.engine, lease_seconds=60, runner="test", job_id=job_id)
        assert job is not None  # a runner's part, as `clearance worker` does it
        run_job(KeyRevocations(instance.engine, instance.audit), instance.engine, job)
        page.wait_for_selector('#job[data-state="done"]')  # the page reloads itself
        assert page.get_attribute("#job", "data-revoked") == page.get_attribute(
            "#job", "data-total"
        )
        page.screenshot(path=str(shots / "job-done.png"))
        gateway.poll()
        with pytest.raises(openai.AuthenticationError):
            gateway.openai(erik).chat.completions.create(model="fable-4", messages=HELLO)

        page = operator.open("/console/tokens")
        page.fill("#token-name", "SIEM export")
        page.check("#scope-catalog-read")
        page.fill("#token-reason", "the SIEM reads the catalog nightly")
        page.click("#create")
        page.wait_for_selector("#secret")
        page.screenshot(path=str(shots / "tokens.png"))

        # A viewer sees every page without a form, and every change it sends anyway is 403.
        viewer = Person(chromium, gateway, outbox, VIEWER)
        people.append(viewer)
        page = viewer.open("/console/models/mythos-5")
        page.wait_for_selector("#read-only")
        assert page.query_selector("#suspend-form") is None
        page.screenshot(path=str(shots / "viewer-model.png"))
        page = viewer.open("/console/licences")
        assert page.query_selector("form.revoke") is None
        before = len(instance.entries(type="admin_action"))
        licence = page.get_attribute("#licences tr", "data-licence") or "1"
        key = instance.entries(action="key.revoke")[0]["target"]
        for path, form in (
            ("/console/models/mythos-5/suspend", {"version": "0" * 20, "reason": "viewer"}),
            ("/console/models/fable-4/reclassify", {"classification": "uncontrolled"}),
            (f"/console/licences/{licence}/revoke", {"reason": "viewer"}),
            ("/console/screening/decide", {"decision": "confirm", "reason": "viewer"}),
            (f"/console/keys/{key}/revoke", {"reason": "viewer"}),
            ("/console/keys/revoke-org", {"org": "Acme Corp", "count": "0", "reason": "v"}),
            ("/console/tokens", {"name": "x", "scope": "catalog:read", "days": "1"}),
            ("/console/operators/grant", {"email": VIEWER, "role": "admin", "reason": "v"}),
            (f"/portal/review/{case.case_id}/decide", {"outcome": "rejected", "note": "v"}),
        ):
            assert viewer.post(path, form) == 403, path
        changes = instance.entries(type="admin_action")[before:]
        assert [
            a for e in changes if not (a := str(e["action"])).endswith((".list", ".query"))
        ] == []
        for person in people:
            assert person.refused == []
    finally:
        for person in people:
            person.context.close()
        instance.close()
