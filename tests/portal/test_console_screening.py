"""Screening hits in the console (/console/screening) through the running gateway, on SQLite and
PostgreSQL: a viewer sees a pending hit with the listed entry's evidence but cannot decide it
(403); an operator clears it with a reason (the person is clear, may use controlled models, and the
page shows the decision's audit index) or confirms it (the person stays blocked: 451); a decision
without a reason names the field; a hit decided by someone else since the page was rendered is
409."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clearance.portal import operators
from clearance.principals import service as principals
from clearance.principals.models import Method, ScreeningStatus, UsPerson
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

PERSON = "viktor@demo.test"
NAME = "Viktor A. Morozkin"  # a potential match for the listed "Viktor Alekseyevich Morozkin"
LISTED = [
    {
        "_id": "csl-42",
        "source": "Specially Designated Nationals (SDN) - Treasury Department",
        "type": "Individual",
        "name": "Viktor Alekseyevich Morozkin",
        "alt_names": "Viktor Morozkine",
        "programs": "RUSSIA-EO14024",
        "dates_of_birth": "1961",
        "nationalities": "",
    },
    {
        "_id": "csl-43",
        "source": "Entity List (EL) - Bureau of Industry and Security",
        "type": "Entity",
        "name": "Farhad Jalali Dastgerdi Trading",
        "alt_names": "",
        "programs": "",
        "dates_of_birth": "",
        "nationalities": "",
    },
]
_HIT = re.compile(
    r'<section class="card hit" data-subject="([^"]+)" data-list="csl" '
    r'data-entry="([^"]+)" data-version="([0-9a-f]{64})"'
)


@pytest.fixture
def db(gateway: Running, tmp_path: Path) -> Iterator[Instance]:
    """The instance with a verified US citizen named like a listed person, and a CSL list."""
    inst = Instance(gateway.settings)
    with inst.engine.begin() as conn:
        user = principals.add_user(conn, PERSON, name=NAME)
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
        _, secret = principals.create_key(conn, PERSON, name="t", allow_fallback=False)
    return secret


def status(db: Instance) -> ScreeningStatus:
    with db.engine.connect() as conn:
        return principals.get_user(conn, PERSON).screening_status


def decide(browser: Browser, **fields: str) -> httpx.Response:
    """POST a decision on the hit as the page shows it (the person, list, entry and version it
    was rendered with), with `fields`; an empty field is left out."""
    page = browser.get("/console/screening")
    assert page.status_code == 200, page.text
    hit = _HIT.search(page.text)
    assert hit, page.text
    data = {
        "csrf": browser.csrf("/console/screening"),
        "subject": hit.group(1),
        "list": "csl",
        "entry": hit.group(2),
        "version": hit.group(3),
        **fields,
    }
    return browser.post("/console/screening/decide", data={k: v for k, v in data.items() if v})


def test_a_viewer_sees_the_hit_with_its_evidence_and_cannot_decide_it(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    assert status(db) is ScreeningStatus.POTENTIAL_MATCH
    browser, actor = signed_in(gateway, db, outbox, VIEWER, operators.VIEWER)
    try:
        home = browser.get("/console/")
        assert 'id="hits-link" href="/console/screening"' in home.text
        assert 'href="/console/screening">Screening hits</a>' in home.text  # the menu
        page = browser.get("/console/screening")
        assert page.status_code == 200
        text = page.text
        hit = _HIT.search(text)
        assert hit and 'data-entry="csl-42"' in text and 'data-outcome="potential_match"' in text
        assert NAME in text and hit.group(1) in text  # by name and pseudonym
        for evidence in (
            "Viktor Alekseyevich Morozkin; Viktor Morozkine",  # names and aliases
            "RUSSIA-EO14024",  # programs
            "1961",  # birth dates
            "Specially Designated Nationals",  # the source
            "csl v",  # the list and its version
            'class="score">0.8',  # the score
            '<ul class="why"><li>name: ',  # why
        ):
            assert evidence in text, evidence
        assert PERSON not in text  # no email on the page
        assert 'id="read-only"' in text and 'action="/console/screening/decide"' not in text
        assert db.entries(action="screening_hit.list", actor=actor)  # looking is recorded

        refused = decide(browser, decision="clear", reason="viewer tries")
        assert refused.status_code == 403
        assert db.entries(action="screening_resolve") == []
        assert status(db) is ScreeningStatus.POTENTIAL_MATCH
    finally:
        browser.close()


def test_an_operator_clears_a_hit_and_the_person_is_clear(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    key = key_for(db)
    assert refused_model(gateway, key, "mythos-5").status_code == 451  # under review
    browser, actor = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    try:
        missing = decide(browser, decision="clear", reason="")
        assert missing.status_code == 400 and 'data-field="reason"' in missing.text
        unknown = decide(browser, decision="ignore", reason="x")
        assert unknown.status_code == 400 and 'data-field="decision"' in unknown.text
        assert db.entries(action="screening_resolve") == []

        answer = decide(browser, decision="clear", reason="born 1990, not the listed person")
        index, action = done(browser, answer)
        resolved = entry(db, index)
        assert action == "clear"
        assert (resolved["action"], resolved["actor"]) == ("screening_resolve", actor)
        assert resolved["details"]["resolution"] == "false_positive"
        assert "born 1990" not in str(resolved)  # the reason is kept only as a digest
        assert status(db) is ScreeningStatus.CLEAR
        after = browser.get(answer.headers["location"]).text
        assert 'id="none"' in after  # nothing pending any more
        gateway.poll()
        assert served(gateway, key, "mythos-5") == "mythos-5"
    finally:
        browser.close()


def test_a_confirmed_hit_keeps_the_person_blocked(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    key = key_for(db)
    browser, actor = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    try:
        answer = decide(browser, decision="confirm", reason="passport matches the listing")
        index, action = done(browser, answer)
        resolved = entry(db, index)
        assert action == "confirm" and resolved["actor"] == actor
        assert resolved["details"]["resolution"] == "true_match"
        assert status(db) is ScreeningStatus.CONFIRMED_MATCH
        gateway.poll()
        for model in ("mythos-5", "fable-4"):  # a confirmed match is refused every model
            refused = refused_model(gateway, key, model)
            assert refused.status_code == 451 and "restricted-party" in refused.message
    finally:
        browser.close()


def test_a_hit_decided_by_someone_else_is_409(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    first, _ = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    second, _ = signed_in(gateway, db, outbox, VIEWER, operators.OPERATOR)
    try:
        hit = _HIT.search(first.get("/console/screening").text)
        token = first.csrf("/console/screening")
        assert hit
        answer = decide(second, decision="confirm", reason="a match")
        assert answer.status_code == 303  # the other operator got there first
        late = first.post(
            "/console/screening/decide",
            data={
                "csrf": token,
                "subject": hit.group(1),
                "list": "csl",
                "entry": "csl-42",
                "version": hit.group(3),
                "decision": "clear",
                "reason": "not them",
            },
        )
        assert late.status_code == 409 and "decided (true_match) since you opened it" in late.text
        assert len(db.entries(action="screening_resolve")) == 1
        assert status(db) is ScreeningStatus.CONFIRMED_MATCH
        forged = first.post(
            "/console/screening/decide",
            data={
                "csrf": token,
                "subject": hit.group(1),
                "list": "csl",
                "entry": "csl-42",
                "version": "0" * 64,
                "decision": "clear",
                "reason": "not them",
            },
        )
        assert forged.status_code == 409
    finally:
        first.close()
        second.close()
