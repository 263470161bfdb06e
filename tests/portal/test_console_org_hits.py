"""Organisations' screening hits in the console (/console/screening, /console/orgs/ID) through
the running gateway, on SQLite and PostgreSQL: a viewer sees an organisation's pending hit beside
people's, with the listed entry's evidence, and cannot decide it (403); an operator clears it with
a reason (the organisation is clear, its member is served a controlled model, the page shows the
decision's audit index) or confirms it (the member is refused every model); a decision without a
reason names the field; a hit decided by someone else since the page was rendered is 409."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clearance.portal import operators
from clearance.principals import directory
from clearance.principals import service as principals
from clearance.principals.models import Method, UsPerson
from clearance.screening.models import ListFormat
from clearance.screening.service import load_lists
from tests.portal.conftest import Browser, Outbox, Running
from tests.portal.review_cases import Instance
from tests.portal.test_console import (
    OPERATOR,
    VIEWER,
    done,
    entry,
    refused_model,
    served,
    signed_in,
)

ORG = "Quantum Microsystems"  # a potential match for the listed Zhongshan entity, and not it
MEMBER = "ada@quantum.test"
LISTED = [
    {
        "_id": "csl-7",
        "source": "Entity List (EL) - Bureau of Industry and Security",
        "type": "Entity",
        "name": "Zhongshan Quantum Microsystems Company Limited",
        "alt_names": "ZQM",
        "programs": "CHINA-EL",
    },
]
_ORG_HIT = re.compile(
    r'<section class="card hit org-hit" data-org="(\d+)" data-list="csl" '
    r'data-entry="([^"]+)" data-version="([0-9a-f]{64})"'
)


@pytest.fixture
def db(gateway: Running, tmp_path: Path) -> Iterator[Instance]:
    """The instance with an organisation named like a listed entity, a verified US citizen in
    it, and a CSL list."""
    inst = Instance(gateway.settings)
    with inst.engine.begin() as conn:
        principals.add_org(conn, ORG, "US")
        user = principals.add_user(conn, MEMBER, name="Ada Byron", org=ORG)
        principals.set_identity(
            conn,
            user.id,
            nationalities=("US",),
            us_person=UsPerson.CITIZEN,
            method=Method.DOCUMENT,
            source="attestation",
            expires=None,
            max_age_days=gateway.settings.policy.verification_max_age_days,
        )
    lists = tmp_path / "csl.csv"
    with lists.open("w", newline="") as fh:
        out = csv.DictWriter(fh, fieldnames=list(LISTED[0]))
        out.writeheader()
        out.writerows(LISTED)
    load_lists(inst.engine, [lists], ListFormat.CSL, name="csl", audit=inst.audit)
    yield inst
    inst.close()


def key_for(db: Instance) -> str:
    with db.engine.begin() as conn:
        _, secret = principals.create_key(conn, MEMBER, name="t", allow_fallback=False)
    return secret


def status(db: Instance) -> str:
    with db.engine.connect() as conn:
        return directory.get_org(conn, ORG).screening_status


def decide(browser: Browser, **fields: str) -> httpx.Response:
    """POST a decision on the organisation's hit as the page shows it, with `fields`."""
    page = browser.get("/console/screening")
    assert page.status_code == 200, page.text
    hit = _ORG_HIT.search(page.text)
    assert hit, page.text
    data = {
        "csrf": browser.csrf("/console/screening"),
        "org": hit.group(1),
        "list": "csl",
        "entry": hit.group(2),
        "version": hit.group(3),
        **fields,
    }
    return browser.post("/console/screening/decide-org", data={k: v for k, v in data.items() if v})


def test_a_viewer_sees_an_organisations_hit_and_cannot_decide_it(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    assert status(db) == "potential_match"
    browser, _ = signed_in(gateway, db, outbox, VIEWER, operators.VIEWER)
    try:
        text = browser.get("/console/screening").text
        hit = _ORG_HIT.search(text)
        assert hit and hit.group(2) == "csl-7" and 'data-outcome="potential_match"' in text
        org_id = hit.group(1)
        assert f'<a href="/console/orgs/{org_id}">{ORG}</a>' in text
        for evidence in (
            "Zhongshan Quantum Microsystems Company Limited; ZQM",  # names and aliases
            "CHINA-EL",  # programs
            "Entity List (EL)",  # the source
            "csl v",  # the list and its version
            'class="score">0.8',  # the score
            '<ul class="why"><li>name: ',  # why
        ):
            assert evidence in text, evidence
        assert 'id="read-only"' in text and "/console/screening/decide-org" not in text

        refused = decide(browser, decision="clear", reason="viewer tries")
        assert refused.status_code == 403
        assert db.entries(action="screening_resolve") == []
        assert status(db) == "potential_match"

        # The organisation's page lists the hit, pending, and links to it.
        page = browser.get(f"/console/orgs/{org_id}").text
        row = r'<tr data-list="csl" data-entry="csl-7">.*?"decision">pending<'
        assert re.search(row, page, re.DOTALL)
        assert f'href="/console/screening?org={org_id}" id="org-hits-link"' in page
        alone = browser.get(f"/console/screening?org={org_id}").text
        assert _ORG_HIT.search(alone) and 'id="one-org"' in alone
        assert browser.get(f"/console/screening?org={int(org_id) + 1}").text.count("org-hit") == 0
    finally:
        browser.close()


def test_an_operator_clears_an_organisations_hit_and_its_member_is_served(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    key = key_for(db)
    assert refused_model(gateway, key, "mythos-5").status_code == 451  # under review
    browser, actor = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    try:
        missing = decide(browser, decision="clear", reason="")
        assert missing.status_code == 400 and 'data-field="reason"' in missing.text
        assert db.entries(action="screening_resolve") == []

        answer = decide(browser, decision="clear", reason="a US company in Austin, not ZQM")
        index, action = done(browser, answer)
        resolved = entry(db, index)
        assert action == "clear"
        assert (resolved["action"], resolved["actor"]) == ("screening_resolve", actor)
        with db.engine.connect() as conn:
            org_id = directory.get_org(conn, ORG).id
        assert resolved["subject"] == f"org:{org_id}"
        assert resolved["details"]["resolution"] == "false_positive"
        assert "Austin" not in str(resolved)  # the reason is kept only as a digest
        assert status(db) == "clear"
        after = browser.get(answer.headers["location"]).text
        assert 'id="none"' in after  # nothing pending any more
        page = browser.get(f"/console/orgs/{org_id}").text
        assert '"decision">false_positive<' in page
        gateway.poll()
        assert served(gateway, key, "mythos-5") == "mythos-5"
    finally:
        browser.close()


def test_a_confirmed_organisation_hit_blocks_its_member(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    key = key_for(db)
    browser, _ = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    try:
        answer = decide(browser, decision="confirm", reason="the registry names the parent")
        index, action = done(browser, answer)
        assert action == "confirm"
        assert entry(db, index)["details"]["resolution"] == "true_match"
        assert status(db) == "confirmed_match"
        gateway.poll()
        refused = refused_model(gateway, key, "fable-4")  # a confirmed match: every model
        assert refused.status_code == 451 and "restricted-party" in refused.message
    finally:
        browser.close()


def test_an_organisation_hit_decided_by_someone_else_is_409(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    first, _ = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    second, _ = signed_in(gateway, db, outbox, VIEWER, operators.OPERATOR)
    try:
        hit = _ORG_HIT.search(first.get("/console/screening").text)
        token = first.csrf("/console/screening")
        assert hit
        assert decide(second, decision="confirm", reason="a match").status_code == 303
        form = {
            "csrf": token,
            "org": hit.group(1),
            "list": "csl",
            "entry": "csl-7",
            "version": hit.group(3),
            "decision": "clear",
            "reason": "not them",
        }
        late = first.post("/console/screening/decide-org", data=form)
        assert late.status_code == 409 and "decided (true_match) since you opened it" in late.text
        assert len(db.entries(action="screening_resolve")) == 1
        assert status(db) == "confirmed_match"
        forged = first.post("/console/screening/decide-org", data={**form, "version": "0" * 64})
        assert forged.status_code == 409
    finally:
        first.close()
        second.close()
