"""An org admin declares the business's KYB details and owners in the portal (issue 18, item 1),
through the running gateway on SQLite and PostgreSQL: only an admin of the organisation opens the
page (granted with `clearance orgs admins add`), each change is recorded with who made it and
screens ownership again, so owners on a list cost every member the models at once (451, the list
not named), and the page never tells the admin why."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from clearance.cli.app import app
from clearance.errors import InvalidInput
from clearance.principals import directory, owners
from clearance.principals.service import get_user
from clearance.screening.models import ListFormat
from clearance.screening.service import load_lists
from tests.portal.conftest import Browser, Outbox, Running
from tests.portal.review_cases import Instance

ADMIN = "erik@demo.test"  # Acme Corp, a licence for fable-5
ORG = "Acme Corp"
SDN = "Specially Designated Nationals (SDN) - Treasury Department"
LISTED = [
    ("1", SDN, "Individual", "Viktor Alekseyevich Morozkin"),
    ("2", SDN, "Individual", "Farhad Jalali Dastgerdi"),
]


@pytest.fixture
def instance_db(gateway: Running, tmp_path: Path) -> Iterator[Instance]:
    inst = Instance(gateway.settings)
    lists = tmp_path / "csl.csv"
    with lists.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["_id", "source", "type", "name"])
        out.writerows(LISTED)
    load_lists(inst.engine, [lists], ListFormat.CSL)
    yield inst
    inst.close()


@pytest.fixture
def cli(gateway: Running, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CLEARANCE_CONFIG", str(gateway.config_file))
    return CliRunner()


def admins(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(app, ["orgs", "admins", *args])
    assert result.exit_code == 0, f"{args}: {result.output} {result.exception!r}"
    return result.output


def chat(gateway: Running, key: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "fable-5", "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )


def wait_for_status(gateway: Running, key: str, status: int) -> httpx.Response:
    deadline = time.monotonic() + 10  # workers drop cached principals at their next poll
    while (answer := chat(gateway, key)).status_code != status:
        assert time.monotonic() < deadline, f"still {answer.status_code}: {answer.text}"
        time.sleep(0.1)
    return answer


def form(browser: Browser, path: str, **fields: str) -> httpx.Response:
    return browser.post(path, data={"csrf": browser.csrf("/portal/org"), **fields})


def test_an_org_admin_declares_details_and_owners_and_the_members_feel_it(
    gateway: Running, instance_db: Instance, cli: CliRunner, browser: Browser, outbox: Outbox
) -> None:
    browser.sign_in(ADMIN, outbox)
    assert browser.get("/portal/org").status_code == 403  # a member, not an admin
    assert 'id="org-link"' not in browser.get("/portal/").text

    granted = json.loads(admins(cli, "add", ORG, ADMIN, "--json"))
    assert (granted["org"], granted["email"], granted["granted_by"][:4]) == (ORG, ADMIN, "cli:")
    assert ADMIN in admins(cli, "list", ORG)
    assert 'id="org-link"' in browser.get("/portal/").text
    page = browser.get("/portal/org")
    assert page.status_code == 200 and 'id="add-owner"' in page.text

    saved = form(browser, "/portal/org", legal_name="Acme Corporation Inc.",
                 registration_number="C1234567", registry="Delaware Division of Corporations",
                 incorporation_country="us", headquarters_country="de")  # fmt: skip
    assert saved.status_code == 303, saved.text
    with instance_db.engine.connect() as conn:
        kyb = directory.get_org(conn, ORG).kyb
        subject = get_user(conn, ADMIN).subject_id
    assert (kyb["legal_name"], kyb["headquarters_country"]) == ("Acme Corporation Inc.", "DE")

    key = gateway.key("erik")
    assert chat(gateway, key).status_code == 200
    for name, percent in (("Viktor Alekseyevich Morozkin", "30"),
                          ("Farhad Jalali Dastgerdi", "25")):  # fmt: skip
        added = form(browser, "/portal/org/owners", kind="person", name=name, percent=percent)
        assert added.status_code == 303, added.text
    refused = wait_for_status(gateway, key, 451)  # 55 % held by blocked persons: restricted
    assert "SDN" not in refused.text and "Morozkin" not in refused.text

    page = browser.get("/portal/org").text  # the admin sees what was declared, never the outcome
    assert "Morozkin" in page and "30 %" in page
    for word in ("restricted", "SDN", "Specially Designated", "sanction"):
        assert word not in page

    with instance_db.engine.connect() as conn:
        declared = owners.list_owners(conn, ORG)
    assert {o.declared_by for o in declared} == {f"portal:{subject}"}
    first = next(o for o in declared if o.name.startswith("Viktor"))
    assert form(browser, f"/portal/org/owners/{first.id}/remove").status_code == 303
    assert (
        wait_for_status(gateway, key, 200).status_code == 200
    )  # 25 %: under review, which holds controlled models only

    actions = [
        (e["action"], e["actor"])
        for e in instance_db.entries(type="admin_action")
        if str(e["action"]).startswith("org.")
    ]
    mine = [a for a, actor in actions if actor == f"portal:{subject}"]
    assert mine == ["org.update", "org.owner.add", "org.owner.add", "org.owner.remove"]
    screened = [
        (e["details"]["status"], e["details"]["listed_owner_share"])  # type: ignore[index]
        for e in instance_db.entries(type="admin_action", action="org.ownership")
    ]
    assert screened == [("review", 30.0), ("restricted", 55.0), ("review", 25.0)]
    for entry in instance_db.entries(type="admin_action"):
        assert "Morozkin" not in json.dumps(entry) and ADMIN not in json.dumps(entry)

    admins(cli, "remove", ORG, ADMIN, "--reason", "left the compliance team")
    assert browser.get("/portal/org").status_code == 403  # read on every request


def test_an_import_and_the_refusals_an_admin_can_meet(
    gateway: Running, instance_db: Instance, cli: CliRunner, browser: Browser, outbox: Outbox
) -> None:
    admins(cli, "add", ORG, ADMIN)
    browser.sign_in(ADMIN, outbox)

    ftm = "\n".join(
        json.dumps(e)
        for e in (
            {"id": "acme", "schema": "Company", "properties": {"name": [ORG]}},
            {"id": "p1", "schema": "Person", "properties": {"name": ["Jane Founder"]}},
            {
                "id": "o1",
                "schema": "Ownership",
                "properties": {"owner": ["p1"], "asset": ["acme"], "percentage": ["60"]},
            },
        )
    ).encode()
    csrf = browser.csrf("/portal/org")
    imported = browser.post(
        "/portal/org/owners/import",
        data={"csrf": csrf, "format": "ftm"},
        files={"file": ("acme.ftm.json", ftm, "application/json")},
    )
    assert imported.status_code == 200, imported.text
    assert "Jane Founder" in imported.text and "from acme.ftm.json" in imported.text

    broken = browser.post(
        "/portal/org/owners/import",
        data={"csrf": browser.csrf("/portal/org"), "format": "ftm"},
        files={"file": ("bad.json", b'{"id": "x", "schema": "Ownership", ', "application/json")},
    )
    assert broken.status_code == 400 and "line 1" in broken.text
    with instance_db.engine.connect() as conn:  # the refused file replaced nothing
        assert [o.name for o in owners.list_owners(conn, ORG)] == ["Jane Founder"]

    over = form(browser, "/portal/org/owners", kind="person", name="Too Much", percent="50")
    assert over.status_code == 400 and "100 %" in over.text
    bad = form(browser, "/portal/org/owners", kind="person", name="X", percent="lots")
    assert bad.status_code == 400
    assert form(browser, "/portal/org/owners", kind="org", name=ORG, percent="1").status_code == 400
    assert form(browser, "/portal/org/owners/999999/remove").status_code == 404
    no_csrf = browser.post("/portal/org/owners", data={"kind": "person", "name": "Y",
                                                       "percent": "1"})  # fmt: skip
    assert no_csrf.status_code == 403

    with pytest.raises(InvalidInput, match="not a member"):  # alice is in no organisation
        cli.invoke(app, ["orgs", "admins", "add", ORG, "alice@demo.test"], catch_exceptions=False)
