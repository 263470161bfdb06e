"""The audit explorer (/console/audit) through the running gateway, on SQLite and PostgreSQL: a
viewer finds a person's decisions, a model's, a rule's and an effect's within a time range,
newest first a page at a time; each entry below the latest signed checkpoint carries an RFC 9162
inclusion proof that verifies here, with the served checkpoint's root, as an auditor would check
it; the look is itself an `audit.query` entry naming the person by pseudonym only. A filter the
explorer refuses names its field; no role is 403."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import httpx

from clearance.audit import merkle
from clearance.audit.checkpoint import Checkpoint
from clearance.audit.entries import admin_action
from clearance.audit.keys import load_signer
from clearance.audit.note import open_note
from clearance.portal import operators
from tests.portal.conftest import Outbox, Running
from tests.portal.review_cases import Instance
from tests.portal.test_console import NOBODY, VIEWER, db, refused_model, served, signed_in

__all__ = ["db"]
_ROW = re.compile(r'<tr data-index="(\d+)" data-type="([a-z_]+)" data-proved="(yes|no)">')
_PROOF = re.compile(
    r'<tr data-index="(\d+)"[^>]*data-proved="yes">.*?<ol class="hashes">(.*?)</ol>', re.S
)


def rows(page: str) -> list[tuple[int, str, str]]:
    return [(int(i), t, p) for i, t, p in _ROW.findall(page)]


def test_a_viewer_queries_the_log_and_each_entry_carries_a_proof_that_verifies(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    assert served(gateway, gateway.key("alice"), "mythos-5") == "mythos-5"
    assert refused_model(gateway, gateway.strict_key("nina"), "mythos-5").status_code == 451
    db.audit.integrate()  # a checkpoint covering both
    browser, actor = signed_in(gateway, db, outbox, VIEWER, operators.VIEWER)
    try:
        found = browser.get("/console/audit", params={"person": "alice@demo.test"})
        assert found.status_code == 200, found.text
        listed = rows(found.text)
        assert listed and all(t for _, t, _ in listed)
        indices = [i for i, _, _ in listed]
        assert indices == sorted(indices, reverse=True)  # newest first
        assert "alice@demo.test" not in found.text.split('id="entries"')[1]  # pseudonyms only

        # Each proof, as shown, leads from the entry's bytes to the served checkpoint's root.
        note = httpx.get(f"{gateway.url}/audit/checkpoint").text
        verifier = load_signer(gateway.settings.audit.signing_key_file).verifier
        checkpoint = Checkpoint.parse(open_note(note, verifier))
        size = int(re.search(r'id="checkpoint" data-size="(\d+)"', found.text).group(1))  # type: ignore[union-attr]
        assert size <= checkpoint.size
        proofs = _PROOF.findall(found.text)
        assert proofs
        for index_text, hashes_html in proofs:
            index = int(index_text)
            hashes = [base64.b64decode(h) for h in re.findall(r"<code>([^<]+)</code>", hashes_html)]
            raw = httpx.get(f"{gateway.url}/audit/entries/{index}").content
            root = merkle.root_from_inclusion(index, size, merkle.leaf_hash(raw), hashes)
            if size == checkpoint.size:
                assert root == checkpoint.root
            served_proof = httpx.get(
                f"{gateway.url}/audit/proof/inclusion", params={"index": index, "size": size}
            ).json()
            assert served_proof["hashes"] == [base64.b64encode(h).decode() for h in hashes]

        denied = browser.get(
            "/console/audit",
            params={"model": "mythos-5", "effect": "deny", "type": "access_decision"},
        )
        shown = rows(denied.text)
        assert shown and {t for _, t, _ in shown} == {"access_decision"}
        assert 'data-proved="yes"' in denied.text
        rule = re.search(r"rules ([a-z0-9-]+)", denied.text)
        assert rule, denied.text
        by_rule = browser.get("/console/audit", params={"rule": rule.group(1)})
        assert rows(by_rule.text)

        tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
        later = browser.get(
            "/console/audit", params={"since": tomorrow, "person": "alice@demo.test"}
        )
        assert later.status_code == 200 and rows(later.text) == []
        today = datetime.now(UTC).date().isoformat()
        within = browser.get(
            "/console/audit", params={"since": today, "until": tomorrow, "model": "mythos-5"}
        )
        assert rows(within.text)

        one = browser.get("/console/audit", params={"index": str(indices[0])})
        assert [i for i, _, _ in rows(one.text)] == [indices[0]]

        # Pages: the next link continues below the last entry shown.
        filler = admin_action(actor="test:filler", action="test.filler", target="x", details={})
        db.audit.append_many([filler] * 60)
        everything = browser.get("/console/audit")
        first = rows(everything.text)
        assert len(first) == 50
        more = re.search(r'id="next" href="([^"]+)"', everything.text)
        assert more
        second = rows(browser.get(more.group(1).replace("&amp;", "&")).text)
        assert second and max(i for i, _, _ in second) < min(i for i, _, _ in first)

        looks = db.entries(action="audit.query", actor=actor)
        assert looks
        subject = str(looks[0]["subject"])
        assert subject and "@" not in subject and "person" not in str(looks[0]["details"])
    finally:
        browser.close()


def test_filters_are_checked_naming_the_field_and_no_role_is_403(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    browser, _ = signed_in(gateway, db, outbox, VIEWER, operators.VIEWER)
    try:
        for params, field in (
            ({"effect": "maybe"}, "effect"),
            ({"since": "yesterday"}, "since"),
            ({"since": "2026-02-01", "until": "2026-01-01"}, "until"),
            ({"person": "nobody@example.org"}, "person"),
            ({"model": "<script>"}, "model"),
            ({"before": "-1"}, "before"),
        ):
            refused = browser.get("/console/audit", params=params)
            assert refused.status_code == 400, params
            assert f'data-field="{field}"' in refused.text
        assert browser.get("/console/audit", params={"index": "99999999"}).status_code == 404
        posted = browser.post("/console/audit", data={"csrf": browser.csrf("/console/audit")})
        assert posted.status_code == 405  # nothing here changes anything
    finally:
        browser.close()
    nobody, _ = signed_in(gateway, db, outbox, NOBODY)
    try:
        assert nobody.get("/console/audit").status_code == 403
    finally:
        nobody.close()
