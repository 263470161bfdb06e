"""A person's identity evidence erased from the console, through the running gateway on SQLite
and PostgreSQL: a viewer's POST is 403; the operator types the person's subject id to confirm
and gives a reason; the images go (`identity.evidence.erase`), then the CLI's `user.erase` entry
with the reason and the count, its index shown. A missing confirmation or reason names the field.
"""

from __future__ import annotations

from clearance.portal import operators
from tests.portal.conftest import Outbox, Running
from tests.portal.review_cases import Instance
from tests.portal.test_console import OPERATOR, VIEWER, db, done, entry, signed_in

__all__ = ["db"]


def test_an_operator_erases_a_persons_evidence(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    stored = db.review_case()  # Nina's case: a document, a selfie and two frames
    page = f"/console/people/{stored.subject}"
    viewer, _ = signed_in(gateway, db, outbox, VIEWER, operators.VIEWER)
    browser, actor = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    try:
        assert 'id="erase-form"' not in viewer.get(page).text
        sneaky = viewer.post(
            f"{page}/erase",
            data={"csrf": viewer.csrf(page), "confirm": stored.subject, "reason": "viewer"},
        )
        assert sneaky.status_code == 403
        assert 'id="erase-form"' in browser.get(page).text
        for fields, field in (
            ({"confirm": "", "reason": "her request"}, "confirm"),
            ({"confirm": "sub_someone_else", "reason": "her request"}, "confirm"),
            ({"confirm": stored.subject, "reason": " "}, "reason"),
        ):
            answer = browser.post(f"{page}/erase", data={"csrf": browser.csrf(page), **fields})
            assert answer.status_code == 400 and f'data-field="{field}"' in answer.text
        assert db.entries(action="identity.evidence.erase") == []

        answer = browser.post(
            f"{page}/erase",
            data={
                "csrf": browser.csrf(page),
                "confirm": stored.subject,
                "reason": "erasure request of 2026-12-07",
            },
        )
        index, action = done(browser, answer)
        erased = entry(db, index)
        assert (action, erased["action"], erased["actor"], erased["subject"]) == (
            "erase",
            "user.erase",
            actor,
            stored.subject,
        )
        assert erased["details"] == {"reason": "erasure request of 2026-12-07", "files": 4}
        (files,) = db.entries(action="identity.evidence.erase")
        assert (files["actor"], files["details"]) == (actor, {"files": 4})
    finally:
        viewer.close()
        browser.close()
