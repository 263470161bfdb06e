"""The published entry schema: the same document everywhere, matching the typed records, held by
`audit verify` for every entry; and a log written by Clearance 0.1 (schema version 1) still
verifies and answers typed queries."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from clearance.audit import entries, entry_schema
from clearance.audit.keys import NoteVerifier
from clearance.audit.query import EntryFilter, scan, select
from clearance.audit.reader import LogReader
from clearance.audit.routes import audit_app
from clearance.audit.service import AuditLog
from clearance.audit.verify import TamperedEntry, verify_log
from clearance.store import connect

from .conftest import ORIGIN

ROOT = Path(__file__).parent.parent.parent
V1_LOG = ROOT / "tests" / "fixtures" / "audit-v1"
V1_ORIGIN = "demo.clearance.local/audit"
MOMENT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RECORDS = {
    "access_decision": entries.AccessDecision,
    "identity_decision": entries.IdentityDecision,
    "screening_decision": entries.ScreeningDecision,
    "admin_action": entries.AdminAction,
    "refusal_summary": entries.RefusalSummary,
}


GUARD = {
    "stage": "output",
    "outcome": "flagged",
    "categories": ["S14"],
    "score_milli": 970,
    "error": None,
    "classifier": "llama-guard:meta-llama/Llama-Guard-3-8B",
    "digest": "hmac-sha256:" + "c" * 64,
    "fail_open": False,
}


def _access(**changes: object) -> bytes:
    fields: dict[str, object] = {
        "subject": "sub_0123456789abcdef01234567",
        "key_id": "key_0123456789abcdef",
        "surface": "openai",
        "endpoint": "/v1/chat/completions",
        "stream": False,
        "model_requested": "mythos-5",
        "model_served": None,
        "effect": "deny",
        "rules": ["controlled-foreign-person"],
        "policy_hash": "sha256:" + "a" * 64,
        "facts_digest": "sha256:" + "b" * 64,
        "facts_version": "p2.c2.l0",
        "action": "inference",
        "ip_country": "SE",
        "outcome": "denied",
        "status": 451,
        "reason": "controlled-foreign-person",
        "time": MOMENT,
    }
    return entries.access_decision(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize("version", entry_schema.VERSIONS)
def test_the_published_documents_are_the_packaged_ones(version: int) -> None:
    docs = ROOT / "docs" / "audit" / f"entry.v{version}.json"
    assert docs.read_bytes() == entry_schema.document(version)


def test_every_field_of_every_record_is_in_the_schema_and_required() -> None:
    defs = orjson.loads(entry_schema.document())["$defs"]
    assert set(defs) == set(RECORDS)
    for name, record in RECORDS.items():
        names = {f.name for f in dataclasses.fields(record)}
        assert set(defs[name]["properties"]) == names, name
        assert set(defs[name]["required"]) == names, name


def test_what_the_writers_encode_is_valid() -> None:
    written = [
        _access(),
        _access(outcome="failed", status=504, reason="upstream_timeout", decision_index=7),
        _access(outcome="cut", status=None, reason="usage-policy", decision_index=8, guard=GUARD),
        entries.identity_decision(
            subject="sub_x", outcome="verified", method="document", evidence_digest="sha256:c"
        ),
        entries.screening_decision(subject="sub_x", status="clear", list_versions={"sdn": "1"}),
        entries.admin_action(actor="cli:root", action="model.suspend", target="m", details={}),
        entries.refusal_summary(
            reason="invalid_api_key",
            status=401,
            surface="anthropic",
            ip_country=None,
            client_network="hmac-sha256:" + "0" * 32,
            count=3,
            first=MOMENT,
            last=MOMENT,
            interval=10,
        ),
    ]
    for raw in written:
        assert entry_schema.check(raw)["schema"] == entries.SCHEMA == 3


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        (_access(outcome="rejected:401:invalid_api_key"), "at outcome"),  # a packed string
        (_access().replace(b'"status":451', b'"status":"451"'), "at status"),
        (_access().replace(b'"surface":"openai",', b""), "surface"),
        (_access().replace(b'"schema":3', b'"schema":9'), "version 9"),
        (_access().replace(b'"type":"access_decision"', b'"type":"other"'), "'other'"),
        (_access().replace(b'"schema":3,', b""), "schema version 1"),  # v3 fields in a v1 entry
        (_access(guard={**GUARD, "prompt": "the text"}), "guard"),  # never the text
        (_access(guard={**GUARD, "digest": "sha256:" + "0" * 64}), "guard/digest"),
        (_access(guard=GUARD).replace(b'"schema":3', b'"schema":2'), "schema version 2"),
        (b"[1]", "not a JSON object"),
        (b"{", "not JSON"),
    ],
)
def test_an_invalid_entry_is_named_precisely(raw: bytes, names: str) -> None:
    with pytest.raises(entry_schema.EntrySchemaError) as caught:
        entry_schema.check(raw)
    assert names in caught.value.detail


def test_verify_names_the_entry_that_breaks_its_schema(
    engine: Engine, audit_log: AuditLog, verifier: NoteVerifier
) -> None:
    """Signed, hashed, consistent, and still wrong: an entry that means nothing is found."""
    good = [_access(decision_index=None, time=MOMENT) for _ in range(5)]
    audit_log.append_many([*good, _access(outcome="rejected:401:x"), *good])
    audit_log.integrate()
    with pytest.raises(TamperedEntry) as caught:
        verify_log(engine, verifier, ORIGIN)
    assert caught.value.index == 5
    assert "does not match schema version 3 at outcome" in caught.value.detail


def test_the_schema_is_served() -> None:
    client = TestClient(audit_app(connect("sqlite://")))
    current = client.get("/schema")
    assert current.status_code == 200
    assert current.headers["content-type"] == "application/schema+json"
    assert current.content == entry_schema.document(3)
    assert client.get("/schema/1").content == entry_schema.document(1)
    assert client.get("/schema/2").content == entry_schema.document(2)
    assert client.get("/schema/4").status_code == 404
    assert client.get("/schema/x").status_code == 400


@pytest.fixture
def v1_log(tmp_path: Path) -> Engine:
    """A copy of a log written by Clearance 0.1 through its gateway (demo personas: allowed,
    fallback, 451, bad keys, bad bodies, an unknown model, an unreachable upstream)."""
    shutil.copy(V1_LOG / "log.sqlite", tmp_path / "log.db")
    return connect(f"sqlite:///{tmp_path / 'log.db'}")


def test_a_version_1_log_still_verifies(v1_log: Engine) -> None:
    verifier = NoteVerifier.from_text((V1_LOG / "verifier.txt").read_text().strip())
    report = verify_log(v1_log, verifier, V1_ORIGIN)
    assert report.size == 32 and report.checkpoints >= 1


def test_version_1_entries_answer_typed_queries(v1_log: Engine) -> None:
    def found(**where: object) -> list[tuple[int, str]]:
        hits = select(scan(LogReader(v1_log)), EntryFilter(**where))  # type: ignore[arg-type]
        return [(i, str(r["outcome"])) for i, r in hits]

    assert found(status=401) == [
        (13, "rejected:401:invalid_api_key"),
        (14, "rejected:401:invalid_api_key"),
    ]
    assert found(status=451, reason="controlled-requires-verification") == [
        (26, "denied"),
        (27, "denied"),
    ]
    assert found(outcome="failed") == [(31, "upstream_error:decision=30")]
    assert found(reason="not_found") == [(21, "rejected:404:not_found")]
    assert len(found(effect="fallback")) == 4
    assert found(endpoint="/v1/chat/completions") == []  # version 1 did not record it
