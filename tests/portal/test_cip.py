"""The Customer Identification Programme record (identity/cip.py; 89 FR 5698), end to end.

An instance whose `[cip] require` names every field: the gateway records the addresses a
person's keys are used from (per day, sealed), a verification records the document's type and
number, the person supplies address, phone and payment in the portal (asked only what the
programme requires), a reviewer opens the record (the view an entry before anything is
decrypted), the auditor bundle carries it, and the maintenance pass purges old address rows
unless a legal hold keeps them. Nothing personal reaches the audit log.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from openai.types.chat import ChatCompletionMessageParam

from clearance.audit import holds
from clearance.config import CipSettings, Settings, load_settings
from clearance.errors import InvalidInput, VerificationError
from clearance.identity import cip
from clearance.identity.tables import cip_addresses, cip_records
from clearance.identity.vault import EvidenceVault
from clearance.principals.service import get_user
from tests.gateway.conftest import make_instance
from tests.portal.conftest import Browser, Outbox, Running
from tests.portal.review_cases import NINA, REVIEWER, Instance

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]
EVERYTHING = '["name", "email", "document", "address", "phone", "payment", "ip"]'


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> tuple[Settings, Path]:
    """The gateway fixture's instance with a programme that requires every field; the
    maintenance pass is the test's to run (the gateway's own would race it)."""
    _, config = make_instance(db_url, tmp_path / "instance")
    text = config.read_text().replace("maintenance_minutes = 5", "maintenance_minutes = 0")
    config.write_text(text + f"\n[cip]\nrequire = {EVERYTHING}\n")
    return load_settings(config, environ={}), config


@pytest.fixture
def db(gateway: Running) -> Iterator[Instance]:
    instance = Instance(gateway.settings)
    yield instance
    instance.close()


def keys_of(settings: Settings) -> cip.CipKeys:
    return cip.CipKeys.of(EvidenceVault.open(settings.identity))


def user_id(db: Instance, email: str) -> int:
    with db.engine.connect() as conn:
        return get_user(conn, email).id


def flush(gateway: Running) -> int:
    """The worker's periodic flush, now (as it runs at every flush_seconds and at shutdown)."""
    assert gateway.app is not None and gateway.app._loop is not None
    return asyncio.run_coroutine_threadsafe(
        gateway.app.flush_addresses(), gateway.app._loop
    ).result(10)


def test_the_gateway_records_each_persons_addresses_per_day_sealed(
    gateway: Running, db: Instance
) -> None:
    client = gateway.openai(gateway.key("alice"))
    for _ in range(3):
        client.chat.completions.create(model="mythos-5", messages=HELLO)
    gateway.openai(gateway.key("dana")).chat.completions.create(model="mythos-5", messages=HELLO)
    assert flush(gateway) == 2  # one row per person, day and address
    client.chat.completions.create(model="mythos-5", messages=HELLO)
    assert flush(gateway) == 1  # merged into alice's row

    alice = user_id(db, "alice@demo.test")
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(cip_addresses).where(cip_addresses.c.user_id == alice)).all()
    assert len(rows) == 1
    (row,) = rows
    assert row.requests == 4 and row.day == datetime.now(UTC).date()
    assert row.first_seen <= row.last_seen
    assert b"127.0.0.1" not in row.sealed and "127.0.0.1" not in row.address_mac

    record = cip.view(
        db.engine,
        keys_of(gateway.settings),
        db.audit,
        gateway.settings.cip,
        alice,
        actor="test:auditor",
        purpose="periodic review",
    )
    assert [(a.address, a.requests) for a in record.addresses] == [("127.0.0.1", 4)]
    assert record.values["email"] == "alice@demo.test"
    # The view was recorded, naming the reason and no personal data.
    (seen,) = db.entries(action="identity.cip.view")
    assert seen["actor"] == "test:auditor" and seen["details"] == {"reason": "periodic review"}
    assert "127.0.0.1" not in json.dumps(db.entries())


def test_a_sealed_value_moved_to_another_row_fails_authentication(
    gateway: Running, db: Instance
) -> None:
    gateway.openai(gateway.key("alice")).chat.completions.create(model="mythos-5", messages=HELLO)
    gateway.openai(gateway.key("dana")).chat.completions.create(model="mythos-5", messages=HELLO)
    flush(gateway)
    alice, dana = user_id(db, "alice@demo.test"), user_id(db, "dana@demo.test")
    with db.engine.begin() as conn:
        stolen = conn.execute(
            sa.select(cip_addresses.c.sealed).where(cip_addresses.c.user_id == alice)
        ).scalar_one()
        conn.execute(
            sa.update(cip_addresses).where(cip_addresses.c.user_id == dana).values(sealed=stolen)
        )
    with pytest.raises(VerificationError):
        cip.read(db.engine, keys_of(gateway.settings), gateway.settings.cip, dana)


def test_a_verification_records_the_document_number_and_the_log_never_does(
    gateway: Running, db: Instance
) -> None:
    stored = db.review_case(cip_settings=gateway.settings.cip)
    nina = user_id(db, NINA)
    record = cip.read(db.engine, keys_of(gateway.settings), gateway.settings.cip, nina)
    assert record.values["document"] == {
        "type": "P",
        "issuing_state": "USA",
        "number": "R12345678",
        "case": stored.case_id,
    }
    assert "R12345678" not in json.dumps(db.entries())
    with db.engine.connect() as conn:
        fields = conn.execute(
            sa.select(cip_records.c.fields).where(cip_records.c.user_id == nina)
        ).scalar_one()
    assert fields == ["document"]


def test_supplied_fields_are_checked_and_only_what_the_programme_requires_is_kept(
    gateway: Running, db: Instance
) -> None:
    keys, settings = keys_of(gateway.settings), gateway.settings.cip
    nina = user_id(db, NINA)
    with pytest.raises(InvalidInput, match="phone"):
        cip.supply(db.engine, keys, db.audit, settings, nina, {"phone": "555-1234"}, actor="t")
    with pytest.raises(InvalidInput, match=r"payment\.means"):
        cip.supply(
            db.engine, keys, db.audit, settings, nina,
            {"payment": {"means": "gold bars", "source": "x"}}, actor="t",
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="not a field a person supplies"):
        cip.supply(db.engine, keys, db.audit, settings, nina, {"document": "x"}, actor="t")
    # A programme that asks only for the address keeps no phone.
    only_address = CipSettings(require=("address",))
    with pytest.raises(InvalidInput, match="does not ask for it"):
        cip.supply(db.engine, keys, db.audit, only_address, nina, {"phone": "+1 202 555 0100"},
                   actor="t")  # fmt: skip
    with db.engine.connect() as conn:
        assert cip.present(conn, nina) == frozenset()  # nothing was kept by the refusals
        assert cip.to_supply(only_address, conn, nina) == ("address",)


def test_the_person_gives_what_is_asked_and_a_reviewer_opens_the_record(
    gateway: Running, db: Instance, browser: Browser, other_browser: Browser, outbox: Outbox
) -> None:
    stored = db.review_case(cip_settings=gateway.settings.cip)
    browser.sign_in(NINA, outbox)
    status = browser.get("/portal/")
    assert 'id="cip-link"' in status.text and "address, phone, payment" in status.text
    page = browser.get("/portal/cip")
    assert page.status_code == 200
    assert 'name="address"' in page.text and 'name="phone"' in page.text
    assert 'name="payment_means"' in page.text

    bad = browser.post(
        "/portal/cip",
        data={"csrf": browser.csrf("/portal/cip"), "address": "1 Main St", "phone": "12"},
    )
    assert bad.status_code == 400 and "phone:" in bad.text
    done = browser.post(
        "/portal/cip",
        data={
            "csrf": browser.csrf("/portal/cip"),
            "address": "1 Main St\nSpringfield",
            "phone": "+1 (202) 555-0100",
            "payment_means": "card",
            "payment_source": "First Bank",
        },
    )
    assert done.status_code == 303
    page = browser.get("/portal/cip")
    assert 'id="complete"' in page.text and "First Bank" not in page.text  # never shown back
    (update,) = db.entries(action="identity.cip.update")
    assert update["details"] == {"fields": ["address", "payment", "phone"]}
    assert "Springfield" not in json.dumps(db.entries())

    # Not a reviewer: refused, and nothing decrypted or recorded.
    csrf = browser.csrf(f"/portal/cases/{stored.case_id}")
    refused = browser.post(
        f"/portal/review/{stored.case_id}/cip", data={"csrf": csrf, "reason": "curious"}
    )
    assert refused.status_code == 403
    assert db.entries(action="identity.cip.view") == []

    db.grant(REVIEWER)
    other_browser.sign_in(REVIEWER, outbox)
    case_page = other_browser.get(f"/portal/review/{stored.case_id}")
    assert 'id="open-cip"' in case_page.text
    csrf = other_browser.csrf(f"/portal/review/{stored.case_id}")
    no_reason = other_browser.post(f"/portal/review/{stored.case_id}/cip", data={"csrf": csrf})
    assert no_reason.status_code == 400 and db.entries(action="identity.cip.view") == []
    opened = other_browser.post(
        f"/portal/review/{stored.case_id}/cip", data={"csrf": csrf, "reason": "case review"}
    )
    assert opened.status_code == 200
    for shown in ("Springfield", "+12025550100", "First Bank", "R12345678", NINA):
        assert shown in opened.text
    (view,) = db.entries(action="identity.cip.view")
    assert view["subject"] == stored.subject and view["details"] == {"reason": "case review"}


def test_the_auditor_bundle_carries_the_record_and_its_view(
    gateway: Running, db: Instance, tmp_path: Path
) -> None:
    gateway.openai(gateway.key("alice")).chat.completions.create(model="mythos-5", messages=HELLO)
    flush(gateway)
    gateway.cli("identity", "cip", "set", "alice@demo.test", "--address", "2 Side St")
    shown = gateway.cli(
        "identity", "cip", "show", "alice@demo.test", "--reason", "support ticket", "--json"
    )
    assert json.loads(shown.output)["fields"]["address"] == "2 Side St"
    out = tmp_path / "bundle"
    gateway.cli(
        "audit", "export", "--email", "alice@demo.test", "--format", "jsonl", "--out", str(out)
    )
    record = json.loads((out / "cip.json").read_text())
    assert record["fields"]["address"] == "2 Side St"
    assert [a["address"] for a in record["addresses"]] == ["127.0.0.1"]
    assert record["missing"] == ["document", "phone", "payment"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert "cip.json" in manifest["files"]
    views = [e["details"]["reason"] for e in db.entries(action="identity.cip.view")]
    assert views == ["support ticket", "auditor bundle export"]


def test_old_address_rows_are_purged_unless_a_legal_hold_keeps_them(
    gateway: Running, db: Instance
) -> None:
    from clearance.maintenance import purge_once

    alice, dana = user_id(db, "alice@demo.test"), user_id(db, "dana@demo.test")
    keys = keys_of(gateway.settings)
    long_ago = datetime.now(UTC) - timedelta(days=365 * 6)
    day = int(long_ago.timestamp() // 86_400)
    cip.flush(
        db.engine,
        keys,
        {
            (alice, day, "192.0.2.1"): [long_ago.timestamp()] * 2 + [1.0],
            (dana, day, "192.0.2.2"): [long_ago.timestamp()] * 2 + [1.0],
            (alice, int(datetime.now(UTC).timestamp() // 86_400), "192.0.2.3"): [
                datetime.now(UTC).timestamp()
            ]
            * 2
            + [1.0],
        },
    )
    with db.engine.connect() as conn:
        dana_subject = get_user(conn, "dana@demo.test").subject_id
    holds.add(
        db.engine, db.audit, scope=holds.Scope.PERSON, value=dana_subject, reason="inquiry",
        reference=None, actor="test:counsel",
    )  # fmt: skip
    purged = purge_once(gateway.settings, db.engine, None, db.audit, now=datetime.now(UTC))
    assert purged.cip_addresses == 1
    with db.engine.connect() as conn:
        left = {
            (r.user_id, r.day)
            for r in conn.execute(sa.select(cip_addresses.c.user_id, cip_addresses.c.day))
        }
    assert left == {(dana, long_ago.date()), (alice, datetime.now(UTC).date())}
    (entry,) = db.entries(action="identity.cip.purge")
    assert entry["details"] == {"rows": 1, "retention_years": 5}
