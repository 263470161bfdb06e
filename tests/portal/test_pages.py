"""Signed-in pages: API keys (shown once, own keys only) and upload refusals."""

from __future__ import annotations

import re
import time

import httpx

from clearance.principals.service import get_user, list_keys
from clearance.store import connect
from tests.portal.conftest import Browser, Outbox, Running

NINA = "nina@demo.test"  # the unverified persona
_KEY = re.compile(r'id="new-key" readonly value="(sk-clr-[A-Za-z0-9_-]+)"')


def _models(gateway: Running, key: str) -> httpx.Response:
    return httpx.get(f"{gateway.url}/v1/models", headers={"authorization": f"Bearer {key}"})


def test_a_key_is_shown_once_works_and_can_be_revoked(
    gateway: Running, browser: Browser, outbox: Outbox
) -> None:
    browser.sign_in(NINA, outbox)
    created = browser.post(
        "/portal/keys", data={"csrf": browser.csrf("/portal/keys"), "name": "ci"}
    )
    assert created.status_code == 200
    match = _KEY.search(created.text)
    assert match
    key = match.group(1)
    assert key not in browser.get("/portal/keys").text  # never shown again
    models = _models(gateway, key)
    assert models.status_code == 200
    assert "mythos-5" not in {m["id"] for m in models.json()["data"]}  # unverified: no control
    key_id = re.search(r"Your new key <strong>(key_[0-9a-f]+)</strong>", created.text)
    assert key_id
    revoked = browser.post(
        f"/portal/keys/{key_id.group(1)}/revoke", data={"csrf": browser.csrf("/portal/keys")}
    )
    assert revoked.status_code == 303
    deadline = time.monotonic() + 3  # the gateway's key cache drops it at its next poll
    while _models(gateway, key).status_code != 401:
        assert time.monotonic() < deadline, "a revoked key still works"
        time.sleep(0.1)


def test_another_persons_key_and_case_are_out_of_reach(
    gateway: Running, browser: Browser, outbox: Outbox
) -> None:
    browser.sign_in(NINA, outbox)
    alice_key = gateway.key("alice")
    page = browser.get("/portal/keys")
    assert "alice" not in page.text
    engine = connect(gateway.settings.database_url)
    with engine.connect() as conn:
        alice_key_id = list_keys(conn, get_user(conn, "alice@demo.test").id)[0].id
    engine.dispose()
    refused = browser.post(
        f"/portal/keys/{alice_key_id}/revoke", data={"csrf": browser.csrf("/portal/")}
    )
    assert refused.status_code == 404
    assert _models(gateway, alice_key).status_code == 200  # still alive
    assert browser.get("/portal/cases/1").status_code == 404
    # Beyond a 32-bit id (PostgreSQL would refuse the query): still a plain 404, not a 500.
    assert browser.get("/portal/cases/99999999999").status_code == 404


def test_uploads_that_are_not_images_are_refused_clearly(browser: Browser, outbox: Outbox) -> None:
    browser.sign_in(NINA, outbox)
    csrf = browser.csrf("/portal/verify")
    pdf = b"%PDF-1.7\n" + b"0" * 2000
    jpeg_named_pdf = browser.post(
        "/portal/verify",
        data={"csrf": csrf},
        files={"document": ("passport.jpg", pdf, "image/jpeg"), "selfie": ("s.jpg", pdf)},
        headers={"accept": "application/json"},
    )
    assert jpeg_named_pdf.status_code == 415
    assert jpeg_named_pdf.json()["error"].startswith("the document photo: ")
    missing = browser.post("/portal/verify", data={"csrf": csrf}, files={"x": ("x", b"1")})
    assert missing.status_code == 400 and "document photo is missing" in missing.text


def test_an_oversized_upload_is_refused_before_it_is_read(
    gateway: Running, browser: Browser, outbox: Outbox
) -> None:
    browser.sign_in(NINA, outbox)
    limit = gateway.settings.portal.max_upload_bytes
    big = browser.post(
        "/portal/verify",
        data={"csrf": browser.csrf("/portal/verify")},
        files={"document": ("d.jpg", b"\xff\xd8\xff" + b"0" * limit)},
    )
    assert big.status_code == 413
