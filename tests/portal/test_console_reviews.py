"""The review queue in the console (/console/reviews) through the running gateway, on SQLite and
PostgreSQL: a reviewer sees the waiting identity case, opens it in the portal's review view (the
one place evidence is decrypted and a case decided) and decides it; the decision comes back to
the console's queue with its audit entry's index, an `identity_decision` naming the reviewer.
The queue is the reviewer's alone: a viewer, an operator, an admin without the role get 403 (its
decision POST too); a case decided since is 409."""

from __future__ import annotations

import re

from clearance.portal import operators
from tests.portal.conftest import Outbox, Running
from tests.portal.review_cases import Instance
from tests.portal.test_console import ADMIN, OPERATOR, VIEWER, db, done, entry, signed_in

__all__ = ["db"]
REVIEWER = "sven@demo.test"


def test_a_reviewer_decides_a_case_from_the_console_and_sees_its_audit_index(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    stored = db.review_case()
    browser, actor = signed_in(gateway, db, outbox, REVIEWER, operators.REVIEWER)
    try:
        queue = browser.get("/console/reviews")
        assert queue.status_code == 200, queue.text
        assert f'<tr data-case="{stored.case_id}">' in queue.text
        link = f"/portal/review/{stored.case_id}?from=console"
        assert f'href="{link}"' in queue.text
        case = browser.get(link)  # the portal's review view, reused: audited, images linked
        assert case.status_code == 200 and 'name="back" value="console"' in case.text
        assert db.entries(action="identity.review.view", actor=actor)
        token = re.search(r'name="csrf" value="([0-9a-f]{64})"', case.text)
        assert token
        answer = browser.post(
            f"/portal/review/{stored.case_id}/decide",
            data={
                "csrf": token.group(1),
                "outcome": "verified",
                "note": "passport checked by hand",
                "back": "console",
            },
        )
        assert answer.headers["location"].startswith("/console/reviews?done=")
        index, action = done(browser, answer)
        assert action == "verified"
        decision = entry(db, index)
        assert (decision["type"], decision["outcome"], decision["reviewer"]) == (
            "identity_decision",
            "verified",
            actor,
        )
        assert decision["subject"] == stored.subject
        after = browser.get("/console/reviews").text
        assert f'<tr data-case="{stored.case_id}">' not in after  # out of the queue
        assert f'<tr data-case="{stored.case_id}" data-outcome="verified">' in after
        assert f'href="/console/audit?index={index}"' in after

        again = browser.post(
            f"/portal/review/{stored.case_id}/decide",
            data={"csrf": token.group(1), "outcome": "rejected", "note": "x", "back": "console"},
        )
        assert again.status_code == 409  # decided since: nothing changes
    finally:
        browser.close()


def test_the_queue_is_for_reviewers_only(gateway: Running, db: Instance, outbox: Outbox) -> None:
    stored = db.review_case()
    for email, role in ((VIEWER, operators.VIEWER), (OPERATOR, operators.OPERATOR)):
        browser, _ = signed_in(gateway, db, outbox, email, role)
        try:
            assert browser.get("/console/reviews").status_code == 403
            token = browser.csrf("/console/")
            sneaky = browser.post(
                f"/portal/review/{stored.case_id}/decide",
                data={"csrf": token, "outcome": "verified", "note": "x", "back": "console"},
            )
            assert sneaky.status_code == 403
        finally:
            browser.close()
    admin, _ = signed_in(gateway, db, outbox, ADMIN, operators.ADMIN)
    try:  # an admin is not a reviewer unless granted it
        assert admin.get("/console/reviews").status_code == 403
        assert 'href="/console/reviews"' not in admin.get("/console/").text.split("<main>")[0]
    finally:
        admin.close()
    assert [e for e in db.entries(type="identity_decision") if e.get("reviewer")] == []
