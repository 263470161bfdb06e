"""The review console through the running gateway, on SQLite and PostgreSQL.

A reviewer lists the queue, opens a case (an audited view) and sees its decrypted images, and
decides it (an identity decision naming the reviewer, facts that reach the policy); everyone
else gets 403 whatever the case number; every POST needs its CSRF token.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from clearance.identity.service import get_case
from clearance.principals.service import get_user
from tests.portal.conftest import Browser, Outbox, Running
from tests.portal.review_cases import NINA, OUTSIDER, REVIEWER, Instance

_IMAGE = re.compile(r'<img src="(/portal/review/\d+/evidence/\d+\?until=\d+&amp;sig=[0-9a-f]{64})"')


def image_urls(page: str) -> list[str]:
    return [m.replace("&amp;", "&") for m in _IMAGE.findall(page)]


@pytest.fixture
def instance_db(gateway: Running) -> Iterator[Instance]:
    inst = Instance(gateway.settings)
    yield inst
    inst.close()


def _models(gateway: Running, key: str) -> set[str]:
    listed = httpx.get(f"{gateway.url}/v1/models", headers={"authorization": f"Bearer {key}"})
    assert listed.status_code == 200
    return {m["id"] for m in listed.json()["data"]}


def test_a_reviewer_lists_opens_and_decides_a_case(
    gateway: Running, instance_db: Instance, browser: Browser, outbox: Outbox
) -> None:
    stored = instance_db.review_case()
    actor = instance_db.grant()
    nina_key = gateway.key("nina")
    assert "mythos-5" not in _models(gateway, nina_key)
    browser.sign_in(REVIEWER, outbox)
    assert 'id="review-link"' in browser.get("/portal/").text

    queue = browser.get("/portal/review")
    assert queue.status_code == 200
    assert f'data-case="{stored.case_id}"' in queue.text and "face_uncertain" in queue.text
    for personal in (NINA, "Novak", stored.subject):  # the queue needs none of these
        assert personal not in queue.text

    assert instance_db.entries(action="identity.review.view") == []
    opened = browser.get(f"/portal/review/{stored.case_id}")
    assert opened.status_code == 200
    assert opened.headers["cache-control"] == "no-store"
    assert "Nina Novak" in opened.text  # the declared name, to compare with the document
    (view,) = instance_db.entries(action="identity.review.view")
    assert (view["actor"], view["subject"], view["target"]) == (
        actor,
        stored.subject,
        f"identity_case:{stored.case_id}",
    )
    assert NINA not in str(view) and "sven" not in str(view)  # pseudonyms only

    urls = image_urls(opened.text)
    assert len(urls) == len(stored.images)
    for url, plaintext in zip(urls, stored.images, strict=True):
        image = browser.get(url)
        assert image.status_code == 200, image.text
        assert image.content == plaintext  # decrypted from the vault, in capture order
        assert image.headers["content-type"] == "image/jpeg"
        assert image.headers["cache-control"] == "no-store"
        assert "sandbox" in image.headers["content-security-policy"]
    assert len(instance_db.entries(action="identity.review.view")) == 1  # images: same view
    tampered = urls[0].replace("/evidence/0?", "/evidence/1?")  # a link is for one image
    assert browser.get(tampered).status_code == 403
    path, query = urls[0].split("?")
    for until in ("1", "9" * 5000, "\u00b2"):  # expired, absurd, a non-ASCII digit
        assert browser.get(f"{path}?until={until}&{query.split('&')[1]}").status_code == 403

    decide = f"/portal/review/{stored.case_id}/decide"
    form = {"outcome": "verified", "note": "portrait and selfie compared by hand"}
    assert browser.post(decide, data=form).status_code == 403  # no CSRF token
    assert instance_db.entries(type="identity_decision", reviewer=actor) == []
    csrf = browser.csrf(f"/portal/review/{stored.case_id}")
    done = browser.post(decide, data={**form, "csrf": csrf})
    assert done.status_code == 303
    assert done.headers["location"] == (f"/portal/review?decided={stored.case_id}&outcome=verified")
    assert 'id="decided"' in browser.get(done.headers["location"]).text

    (decision,) = instance_db.entries(type="identity_decision", reviewer=actor)
    assert (decision["subject"], decision["outcome"], decision["method"]) == (
        stored.subject,
        "verified",
        "manual",
    )
    with instance_db.engine.connect() as conn:
        identity = get_user(conn, NINA).identity
        case = get_case(conn, stored.case_id)
    assert identity is not None and identity.nationalities == ("US",)
    assert (case.decided_by, case.decision_note) == (actor, form["note"])
    deadline = time.monotonic() + 5  # the gateway's principal cache drops Nina at its next poll
    while "mythos-5" not in _models(gateway, nina_key):
        assert time.monotonic() < deadline, "the verified facts never reached the policy"
        time.sleep(0.1)

    again = browser.post(decide, data={"outcome": "rejected", "note": "second look", "csrf": csrf})
    assert again.status_code == 409 and "not awaiting review" in again.text
    assert f'data-case="{stored.case_id}"' not in browser.get("/portal/review").text


def test_without_the_role_every_review_page_is_403_and_reveals_nothing(
    gateway: Running,
    instance_db: Instance,
    browser: Browser,
    other_browser: Browser,
    outbox: Outbox,
) -> None:
    stored = instance_db.review_case()
    instance_db.grant()
    other_browser.sign_in(REVIEWER, outbox)
    urls = image_urls(other_browser.get(f"/portal/review/{stored.case_id}").text)
    assert urls

    browser.sign_in(OUTSIDER, outbox)
    assert 'id="review-link"' not in browser.get("/portal/").text
    csrf = browser.csrf("/portal/")
    answers = {
        path: browser.get(path)
        for path in ("/portal/review", f"/portal/review/{stored.case_id}", "/portal/review/99999")
    }
    answers["image"] = browser.get(urls[0])  # another session's link: still the role first
    for case_id in (stored.case_id, 99999):
        answers[f"decide {case_id}"] = browser.post(
            f"/portal/review/{case_id}/decide",
            data={"outcome": "verified", "note": "x", "csrf": csrf},
        )
    for what, response in answers.items():
        assert response.status_code == 403, what
    existing, missing = answers[f"/portal/review/{stored.case_id}"], answers["/portal/review/99999"]
    assert existing.text == missing.text and "reviewers" in existing.text
    assert len(instance_db.entries(action="identity.review.view")) == 1  # the reviewer's only
    with instance_db.engine.connect() as conn:
        assert get_case(conn, stored.case_id).decided_by is None

    signed_out = Browser(gateway.url)
    try:
        for path in ("/portal/review", f"/portal/review/{stored.case_id}", urls[0]):
            response = signed_out.get(path)
            assert (response.status_code, response.headers["location"]) == (303, "/portal/signin")
    finally:
        signed_out.close()

    instance_db.revoke()  # a revocation holds at the reviewer's next request, images included
    assert other_browser.get(urls[0]).status_code == 403
    assert other_browser.get("/portal/review").status_code == 403


def test_a_reviewer_cannot_decide_their_own_verification(
    instance_db: Instance, browser: Browser, outbox: Outbox
) -> None:
    stored = instance_db.review_case(NINA)
    instance_db.grant(NINA)
    browser.sign_in(NINA, outbox)
    page = browser.get(f"/portal/review/{stored.case_id}")
    assert page.status_code == 200 and 'id="decide"' not in page.text
    refused = browser.post(
        f"/portal/review/{stored.case_id}/decide",
        data={"outcome": "verified", "note": "me", "csrf": browser.csrf("/portal/")},
    )
    assert refused.status_code == 403
    assert browser.get("/portal/review/424242").status_code == 404  # to a reviewer, it is absent
