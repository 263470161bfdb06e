"""Screening in the flow, on real SQLite and PostgreSQL: list versions, status changes with
facts-version bumps, audit entries, resolutions that hold until the entry changes."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.errors import InvalidInput, NotFound
from clearance.principals import service as principals
from clearance.principals.models import Method, ScreeningStatus, UsPerson
from clearance.screening import hits, repository, service
from clearance.screening.models import ListFormat, Outcome
from clearance.store import versions
from clearance.store.tables import users

LISTS = Path(__file__).resolve().parents[1] / "fixtures" / "lists"
SDN = [LISTS / "sdn.csv", LISTS / "alt.csv", LISTS / "add.csv"]


class Collected:
    """An audit sink that keeps what it is given (the real AuditLog has the same method)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, object]] = []

    def append(self, entry: bytes) -> int:
        self.entries.append(json.loads(entry))
        return len(self.entries) - 1


def _user(engine: Engine, email: str, name: str, born: date | None = None) -> int:
    with engine.begin() as conn:
        return principals.add_user(conn, email, name=name, birth_date=born).id


def _state(engine: Engine, user_id: int) -> tuple[str, int, int]:
    with engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.id == user_id)).one()
        counters = versions.read_all(conn)
    return row.screening_status, row.facts_version, counters.get("principals", 0)


def test_loading_a_list_flags_an_existing_user(engine: Engine) -> None:
    listed = _user(engine, "vp@example.ru", "Vladimir Putin", date(1952, 10, 7))
    clean = _user(engine, "gb@example.com", "George Bush")
    before = _state(engine, listed)
    audit = Collected()

    summary = service.load_lists(engine, SDN, ListFormat.OFAC_SDN, audit=audit, actor="t")

    assert summary.created and summary.version.entry_count == 18
    assert summary.rescreen is not None and summary.rescreen.screened == 2
    assert summary.rescreen.changed == {"confirmed_match": 1}
    status, facts_version, principals_version = _state(engine, listed)
    assert status == ScreeningStatus.CONFIRMED_MATCH.value
    assert facts_version == before[1] + 1
    assert principals_version > before[2]
    assert _state(engine, clean)[0] == "clear"
    load_entry, decision = audit.entries
    assert load_entry["type"] == "admin_action" and load_entry["action"] == "list_load"
    assert decision["type"] == "screening_decision"
    assert decision["status"] == "confirmed_match"
    assert decision["list_versions"] == {"ofac-sdn": summary.version.content_hash}
    assert "35096" not in json.dumps(decision)  # never which entry matched (tip-off)


def test_same_content_is_not_a_new_version(engine: Engine) -> None:
    first = service.load_lists(engine, SDN, ListFormat.OFAC_SDN)
    again = service.load_lists(engine, SDN, ListFormat.OFAC_SDN)
    assert not again.created and again.version.id == first.version.id
    other = service.load_lists(engine, [LISTS / "un.xml"], ListFormat.UN_XML, name="un-sc")
    with engine.connect() as conn:
        current = repository.current(conn)
        restored = service.build_matcher(conn)
    assert [v.name for v in current] == ["ofac-sdn", "un-sc"]
    assert other.version.content_hash != first.version.content_hash
    assert {n.list_name for n in restored.names} == {"ofac-sdn", "un-sc"}


def test_false_positive_stays_resolved_until_the_entry_changes(
    engine: Engine, tmp_path: Path
) -> None:
    user_id = _user(engine, "kim@example.org", "Kim Jong Un")
    service.load_lists(engine, SDN, ListFormat.OFAC_SDN)
    assert _state(engine, user_id)[0] == "confirmed_match"
    audit = Collected()

    result = service.resolve(
        engine,
        "kim@example.org",
        "ofac-sdn",
        "20157",
        service.Resolution.FALSE_POSITIVE,
        "different person: born 1990 in Seoul",
        actor="t",
        audit=audit,
    )
    assert result.status is Outcome.CLEAR
    assert _state(engine, user_id)[0] == "clear"
    assert [e["type"] for e in audit.entries] == ["admin_action", "screening_decision"]
    assert "Seoul" not in json.dumps(audit.entries)  # the reason is digested, not logged

    # A re-screen against the same entry keeps it resolved...
    service.rescreen_all(engine)
    assert _state(engine, user_id)[0] == "clear"
    # ...until the list changes what it says about that entry.
    changed = (LISTS / "sdn.csv").read_bytes().replace(b"DOB 08 Jan 1984", b"DOB 08 Jan 1983")
    assert changed != (LISTS / "sdn.csv").read_bytes()
    with engine.connect() as conn:
        assert hits.for_user(conn, user_id)[0].entry_id == "20157"
    (tmp_path / "sdn.csv").write_bytes(changed)
    service.load_lists(engine, [tmp_path / "sdn.csv", *SDN[1:]], ListFormat.OFAC_SDN)
    assert _state(engine, user_id)[0] == "confirmed_match"


def test_true_match_blocks_a_potential_match(engine: Engine) -> None:
    user_id = _user(engine, "sh@example.iq", "صدام حسين")  # Arabic script: a review case
    service.load_lists(engine, SDN, ListFormat.OFAC_SDN)
    assert _state(engine, user_id)[0] == "potential_match"
    service.resolve(
        engine, "sh@example.iq", "ofac-sdn", "7843", service.Resolution.TRUE_MATCH, "confirmed"
    )
    assert _state(engine, user_id)[0] == "confirmed_match"


def test_resolve_needs_a_current_hit_and_a_reason(engine: Engine) -> None:
    _user(engine, "x@example.com", "Nobody Listed")
    service.load_lists(engine, SDN, ListFormat.OFAC_SDN)
    with pytest.raises(NotFound):
        service.resolve(
            engine, "x@example.com", "ofac-sdn", "35096", service.Resolution.TRUE_MATCH, "r"
        )
    with pytest.raises(InvalidInput):
        service.resolve(
            engine, "x@example.com", "ofac-sdn", "35096", service.Resolution.TRUE_MATCH, " "
        )


def test_screen_user_uses_verified_nationality(engine: Engine) -> None:
    user_id = _user(engine, "sh@example.iq", "Sadam Husein", date(1937, 4, 28))
    with engine.begin() as conn:
        principals.set_identity(
            conn,
            user_id,
            nationalities=["IQ"],
            us_person=UsPerson.NONE,
            method=Method.IN_PERSON,
            source="test",
            expires=None,
            max_age_days=365,
        )
    service.load_lists(engine, SDN, ListFormat.OFAC_SDN)
    with engine.begin() as conn:
        result = service.screen_user(conn, user_id)
    assert result.status is Outcome.MATCH
    assert "nationality IQ agrees" in result.matches[0].why
