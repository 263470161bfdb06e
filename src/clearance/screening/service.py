"""Screening behaviour: load list versions, screen users, re-screen everyone, resolve hits.

A user's `screening_status` is derived from the current matches and the operator's resolutions:
a match (or a potential match resolved as a true match) is `confirmed_match`, a potential match
is `potential_match`, nothing (or only resolved false positives) is `clear`. Every change bumps
the user's `facts_version` and the `principals` counter in the same transaction, so the next
request is decided on the new facts; it also yields a `screening_decision` audit entry.

An organisation screened as an entity is treated the same way (`screen_org`, `resolve_org`):
its hits and resolutions are kept in tables of their own, and a change of its status bumps
every member's facts (`touch_members`), since it applies to all of them.

Audit entries are collected in an `outbox` (a list of encoded entries) and appended by the
caller after the transaction commits (see `publish`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from clearance.audit import entries as audit_entries
from clearance.audit.sink import AuditSink
from clearance.errors import Conflict, InvalidInput, NotFound
from clearance.principals.models import ScreeningStatus
from clearance.principals.service import get_user, get_user_by_id, touch_members
from clearance.screening import hits, loaders, ownership, repository
from clearance.screening.hits import Holder
from clearance.screening.matcher import Matcher
from clearance.screening.models import (
    EntityType,
    ListFormat,
    Outcome,
    Query,
    ScreeningResult,
    Thresholds,
)
from clearance.store import versions
from clearance.store.tables import orgs, users

RESCREEN_BATCH = 200
DEFAULT_NAMES = {
    ListFormat.OFAC_SDN: "ofac-sdn",
    ListFormat.CSL: "csl",
    ListFormat.UN_XML: "un",
    ListFormat.FTM: "opensanctions",
}


class Resolution(StrEnum):
    FALSE_POSITIVE = "false_positive"
    TRUE_MATCH = "true_match"


@dataclass(frozen=True, slots=True)
class RescreenSummary:
    screened: int
    changed: dict[str, int] = field(default_factory=dict)  # new status -> users


@dataclass(frozen=True, slots=True)
class LoadSummary:
    version: repository.ListVersion
    created: bool  # False: the newest version already had this content
    rescreen: RescreenSummary | None


def publish(outbox: Iterable[bytes], audit: AuditSink | None) -> None:
    """Append collected audit entries, in order, once their transaction has committed."""
    if audit is None:
        return
    for entry in outbox:
        audit.append(entry)


def build_matcher(conn: Connection, thresholds: Thresholds | None = None) -> Matcher:
    """A matcher over the newest version of every loaded list."""
    lists = [(v.name, repository.entries(conn, v.id)) for v in repository.current(conn)]
    return Matcher.build(lists, thresholds)


def list_versions(conn: Connection) -> dict[str, str]:
    """List name -> content hash of the version screening runs against (for audit entries)."""
    return {v.name: v.content_hash for v in repository.current(conn)}


def load_lists(
    engine: Engine,
    paths: Sequence[Path],
    fmt: ListFormat,
    *,
    name: str | None = None,
    actor: str = "cli",
    thresholds: Thresholds | None = None,
    audit: AuditSink | None = None,
) -> LoadSummary:
    """Load files as a new version of list `name`, then re-screen every user against it."""
    try:
        files = [(p.name, p.read_bytes()) for p in paths]
    except OSError as exc:
        raise InvalidInput(f"cannot read list file: {exc}") from exc
    report = loaders.load(fmt, files)
    digest = repository.content_hash([data for _, data in files])
    list_name = name or DEFAULT_NAMES[fmt]
    with engine.begin() as conn:
        newest = repository.latest(conn, list_name)
        if newest is not None and newest.content_hash == digest:
            return LoadSummary(newest, created=False, rescreen=None)
        version = repository.save(conn, list_name, fmt, digest, report)
        versions.bump(conn, versions.Kind.LISTS)
    details: dict[str, object] = {
        "list": list_name,
        "format": fmt.value,
        "content_hash": digest,
        "entries": version.entry_count,
        "skipped": dict(report.skipped),
    }
    entry = audit_entries.admin_action(
        actor=actor, action="list_load", target=list_name, details=details
    )
    publish([entry], audit)
    summary = rescreen_all(engine, thresholds=thresholds, audit=audit)
    return LoadSummary(version, created=True, rescreen=summary)


def user_query(conn: Connection, user_id: int) -> Query | None:
    """What is screened for a user: the verified or declared name, birth date, nationalities."""
    user = get_user_by_id(conn, user_id)
    if not user.name:
        return None
    nats = user.identity.nationalities if user.identity else ()
    return Query(user.name, user.birth_date, tuple(nats), EntityType.PERSON)


def screen_user(
    conn: Connection,
    user_id: int,
    matcher: Matcher | None = None,
    *,
    outbox: list[bytes] | None = None,
) -> ScreeningResult:
    """Screen one user, store the hits, and update their status (in the caller's transaction).
    The result's status counts resolutions: false positives drop out, true matches block."""
    matcher = matcher if matcher is not None else build_matcher(conn)
    query = user_query(conn, user_id)
    raw = matcher.screen(query) if query else ScreeningResult("", Outcome.CLEAR, ())
    current = hits.with_hashes(raw.matches, matcher)
    hits.store(conn, user_id, current)
    result = hits.resolve(raw, current, hits.resolutions(conn, user_id))
    _set_status(conn, user_id, result, matcher, outbox)
    return result


def screen_org(
    conn: Connection,
    org_id: int,
    matcher: Matcher | None = None,
    *,
    outbox: list[bytes] | None = None,
) -> ScreeningResult:
    """Screen an organisation as an entity, store the hits and update its status, which applies
    to every member at once (in the caller's transaction). As for a person, the result's status
    counts resolutions: false positives drop out, true matches block."""
    matcher = matcher if matcher is not None else build_matcher(conn)
    row = conn.execute(sa.select(orgs).where(orgs.c.id == org_id)).one()
    countries = (row.country,) if row.country else ()
    raw = matcher.screen(Query(row.name, None, countries, EntityType.ENTITY))
    current = hits.with_hashes(raw.matches, matcher)
    hits.store(conn, org_id, current, Holder.ORG)
    result = hits.resolve(raw, current, hits.resolutions(conn, org_id, Holder.ORG))
    status = _STATUS[result.status]
    if status.value != row.screening_status:
        conn.execute(sa.update(orgs).where(orgs.c.id == org_id).values(screening_status=status))
        touch_members(conn, org_id)
        if outbox is not None:
            outbox.append(
                audit_entries.screening_decision(
                    subject=f"org:{org_id}",
                    status=status.value,
                    list_versions=list_versions(conn),
                    match_digest=_match_digest(result),
                )
            )
    return result


_STATUS = {
    Outcome.CLEAR: ScreeningStatus.CLEAR,
    Outcome.POTENTIAL_MATCH: ScreeningStatus.POTENTIAL_MATCH,
    Outcome.MATCH: ScreeningStatus.CONFIRMED_MATCH,
}


def _set_status(
    conn: Connection,
    user_id: int,
    result: ScreeningResult,
    matcher: Matcher,
    outbox: list[bytes] | None,
    reviewer: str | None = None,
) -> bool:
    status = _STATUS[result.status]
    user = get_user_by_id(conn, user_id)
    if user.screening_status is status:
        return False
    conn.execute(
        sa.update(users)
        .where(users.c.id == user_id)
        .values(screening_status=status.value, facts_version=users.c.facts_version + 1)
    )
    versions.bump(conn, versions.Kind.PRINCIPALS)
    if outbox is not None:
        outbox.append(
            audit_entries.screening_decision(
                subject=user.subject_id,
                status=status.value,
                list_versions=list_versions(conn),
                match_digest=_match_digest(result),
                reviewer=reviewer,
            )
        )
    return True


def rescreen_ownership(
    conn: Connection,
    matcher: Matcher | None = None,
    *,
    outbox: list[bytes] | None = None,
    day: date | None = None,
) -> dict[int, ownership.Finding]:
    """Every organisation's ownership status again (after a list load, an owner declared or
    removed, or a day on which a dated rule starts or stops); one entry per change, naming the
    status, the share and the rule, never the owners."""
    matcher = matcher if matcher is not None else build_matcher(conn)
    changed = ownership.screen_ownership(
        conn, matcher, review=matcher.thresholds.ownership_review, day=day
    )
    if outbox is not None:
        for org_id, found in changed.items():
            outbox.append(
                audit_entries.admin_action(
                    actor="screening",
                    action="org.ownership",
                    target=f"org:{org_id}",
                    details={
                        "status": found.status,
                        "listed_owner_share": found.share,
                        "rule": found.rule,
                        "list_versions": list_versions(conn),
                    },
                )
            )
    return changed


def _match_digest(result: ScreeningResult) -> str | None:
    """A digest of which entries matched: provable later, yet no list entry in the log."""
    if not result.matches:
        return None
    keys = sorted(f"{m.list_name}\x1f{m.entry_id}" for m in result.matches)
    return hashlib.sha256("\x1e".join(keys).encode()).hexdigest()


def rescreen_all(
    engine: Engine,
    *,
    thresholds: Thresholds | None = None,
    audit: AuditSink | None = None,
) -> RescreenSummary:
    """Screen every named user against the current lists; run after each list load."""
    with engine.connect() as conn:
        matcher = build_matcher(conn, thresholds)
        ids = [int(i) for i in conn.scalars(sa.select(users.c.id).order_by(users.c.id))]
        org_ids = [int(i) for i in conn.scalars(sa.select(orgs.c.id).order_by(orgs.c.id))]
    changed: dict[str, int] = {}
    for start in range(0, len(ids), RESCREEN_BATCH):
        outbox: list[bytes] = []
        with engine.begin() as conn:
            for user_id in ids[start : start + RESCREEN_BATCH]:
                before = len(outbox)
                result = screen_user(conn, user_id, matcher, outbox=outbox)
                if len(outbox) > before:
                    key = _STATUS[result.status].value
                    changed[key] = changed.get(key, 0) + 1
        publish(outbox, audit)
    outbox = []
    with engine.begin() as conn:
        for org_id in org_ids:
            if screen_org(conn, org_id, matcher, outbox=outbox).matches:
                changed["organisations_flagged"] = changed.get("organisations_flagged", 0) + 1
        owned = rescreen_ownership(conn, matcher, outbox=outbox)
        if owned:
            changed["organisations_ownership_changed"] = len(owned)
    publish(outbox, audit)
    return RescreenSummary(screened=len(ids) + len(org_ids), changed=changed)


def resolve(
    engine: Engine,
    email: str,
    list_name: str,
    entry_id: str,
    resolution: Resolution,
    reason: str,
    *,
    actor: str = "cli",
    thresholds: Thresholds | None = None,
    audit: AuditSink | None = None,
    pending: str | None = None,
) -> ScreeningResult:
    """Record an operator's decision on one current hit, then re-derive the user's status. The
    decision holds for this list entry until the list changes what it says about the entry.

    `pending` (the console's forms carry it): the entry hash the hit was shown pending against.
    With it, a hit decided since (by another operator, in another tab, by the CLI), or whose
    entry changed or went, is refused with 409 instead of decided over."""
    if not reason.strip():
        raise InvalidInput("a resolution needs a reason")
    outbox: list[bytes] = []
    with engine.begin() as conn:
        user = get_user(conn, email)
        if pending is not None:
            # Lock the person's row for the check and the change (PostgreSQL; SQLite's write
            # transaction excludes other writers), so two operators cannot both pass it.
            conn.execute(sa.select(users.c.id).where(users.c.id == user.id).with_for_update())
        hit = _decide(conn, Holder.USER, user.id, email, list_name, entry_id, pending)
        hits.record(conn, hit, resolution.value, reason.strip(), actor)
        outbox.append(_resolution_entry(actor, user.subject_id, hit.entry_hash, resolution, reason))
        matcher = build_matcher(conn, thresholds)
        result = screen_user(conn, user.id, matcher, outbox=outbox)
    publish(outbox, audit)
    return result


def resolve_org(
    engine: Engine,
    org_id: int,
    list_name: str,
    entry_id: str,
    resolution: Resolution,
    reason: str,
    *,
    actor: str = "cli",
    thresholds: Thresholds | None = None,
    audit: AuditSink | None = None,
    pending: str | None = None,
) -> ScreeningResult:
    """`resolve` for an organisation's hit: the decision is kept, the organisation screened
    again at once (its members' facts bumped if its status changes), and `pending` refuses a
    stale decision with 409, all as for a person."""
    if not reason.strip():
        raise InvalidInput("a resolution needs a reason")
    outbox: list[bytes] = []
    with engine.begin() as conn:
        # Locked as `resolve` locks the person's row, when a form says what it was shown.
        query = sa.select(orgs.c.id, orgs.c.name).where(orgs.c.id == org_id)
        row = conn.execute(query.with_for_update() if pending is not None else query).first()
        if row is None:
            raise NotFound(f"unknown organisation {org_id}")
        hit = _decide(conn, Holder.ORG, org_id, row.name, list_name, entry_id, pending)
        hits.record(conn, hit, resolution.value, reason.strip(), actor)
        subject = f"org:{org_id}"
        outbox.append(_resolution_entry(actor, subject, hit.entry_hash, resolution, reason))
        matcher = build_matcher(conn, thresholds)
        result = screen_org(conn, org_id, matcher, outbox=outbox)
    publish(outbox, audit)
    return result


def _decide(
    conn: Connection,
    holder: Holder,
    holder_id: int,
    who: str,
    list_name: str,
    entry_id: str,
    pending: str | None,
) -> hits.StoredHit:
    """The current hit to decide, or why not: NotFound, or 409 for a stale form (`pending`)."""
    hit = hits.current(conn, holder_id, list_name, entry_id, holder)
    if pending is not None:
        _check_pending(conn, holder, holder_id, hit, pending)
    if hit is None:
        raise NotFound(f"{who} has no current hit on {list_name} entry {entry_id}")
    return hit


def _check_pending(
    conn: Connection, holder: Holder, holder_id: int, hit: hits.StoredHit | None, shown: str
) -> None:
    if hit is None or hit.entry_hash != shown:
        what = "person" if holder is Holder.USER else "organisation"
        raise Conflict(
            f"this hit changed since you opened it (the list or the {what} changed): reload it"
        )
    decided = hits.resolutions(conn, holder_id, holder).get((hit.list_name, hit.entry_id))
    if decided is not None and decided[1] == hit.entry_hash:
        raise Conflict(
            f"this hit was decided ({decided[0]}) since you opened it, by someone else or in "
            "another tab: reload it"
        )


def _resolution_entry(
    actor: str, subject: str, entry_hash: str, resolution: Resolution, reason: str
) -> bytes:
    # The reason may name the person; the log keeps only its digest (DESIGN.md "Keep little").
    details: dict[str, object] = {
        "resolution": resolution.value,
        "entry_digest": entry_hash,
        "reason_digest": hashlib.sha256(reason.strip().encode()).hexdigest(),
    }
    return audit_entries.admin_action(
        actor=actor,
        action="screening_resolve",
        target="screening_hit",
        details=details,
        subject=subject,
    )
