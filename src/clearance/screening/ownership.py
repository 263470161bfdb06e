"""Ownership screening: an organisation owned 50 % or more by blocked or listed parties is itself
restricted, listed or not (OFAC's 50 Percent Rule; BIS's Affiliates Rule while in force).

How the share is counted, per OFAC's guidance of 13 Aug 2014 and FAQs 398-402:
- the shares of different blocked owners add up (30 % + 25 % = 55 %: restricted);
- an entity blocked by the rule counts as a blocked owner of what it owns, so the status runs
  down a chain (A 50 % SDN-owned owns 60 % of B: B is restricted);
- shares are not multiplied along a chain (40 % of a company that owns 100 % of another blocks
  neither): only an owner that is itself blocked passes its share on.

Each rule is dated data (ownership_rules.toml): it applies only on days it is in force. A share
from `[screening] ownership_review` percent up to the threshold, or owners who may be listed
(a potential match), send the organisation to review. The path that led to a restriction is for
operators only, never for the organisation's members (who are told only that access is blocked
pending review: no tip-off of which list).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.errors import ConfigError
from clearance.principals.service import touch_members
from clearance.screening.matcher import Matcher
from clearance.screening.models import EntityType, Outcome, Query
from clearance.store.tables import org_owners, orgs

CLEAR, REVIEW, RESTRICTED = "clear", "review", "restricted"


@dataclass(frozen=True, slots=True)
class OwnershipRule:
    id: str
    name: str
    sources: tuple[str, ...]
    threshold: float
    effective_from: date
    suspended: tuple[tuple[date, date], ...]
    citation: str

    def in_force(self, day: date) -> bool:
        if day < self.effective_from:
            return False
        return not any(start <= day < end for start, end in self.suspended)

    def covers(self, source: str) -> bool:
        return any(s.lower() in source.lower() for s in self.sources)


def load_rules(text: str | None = None) -> tuple[OwnershipRule, ...]:
    raw = text if text is not None else (
        resources.files("clearance.screening").joinpath("ownership_rules.toml").read_text()
    )  # fmt: skip
    try:
        doc = tomllib.loads(raw)
        return tuple(
            OwnershipRule(
                id=r["id"],
                name=r["name"],
                sources=tuple(r["sources"]),
                threshold=float(r["threshold"]),
                effective_from=date.fromisoformat(r["effective_from"]),
                suspended=tuple(
                    (date.fromisoformat(a), date.fromisoformat(b))
                    for a, b in r.get("suspended", ())
                ),
                citation=r["citation"],
            )
            for r in doc["rule"]
        )
    except (KeyError, TypeError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"ownership rules: {exc}") from exc


RULES = load_rules()


@dataclass(slots=True)
class Finding:
    """One organisation's ownership status, as stored and shown to operators."""

    status: str = CLEAR
    share: float = 0.0  # the largest aggregate share held by blocked owners under one rule
    rule: str | None = None  # the rule that restricted it (or that the review share is under)
    path: list[dict[str, object]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Owner:
    kind: str
    name: str
    owner_org_id: int | None
    percent: float
    country: str | None


class _Graph:
    def __init__(
        self,
        names: Mapping[int, tuple[str, str | None]],
        owners: Mapping[int, Sequence[_Owner]],
        matcher: Matcher,
        rules: Sequence[OwnershipRule],
        review: float,
    ) -> None:
        self.names = names
        self.owners = owners
        self.matcher = matcher
        self.rules = rules
        self.review = review
        self._listed: dict[tuple[str, str, str | None], tuple[set[str], bool]] = {}
        self._blocked: dict[tuple[int, str], bool] = {}

    def listed(self, kind: str, name: str, country: str | None) -> tuple[set[str], bool]:
        """The rules whose lists name this party (a match), and whether one may (potential)."""
        key = (kind, name, country)
        if key not in self._listed:
            entity = EntityType.PERSON if kind == "person" else EntityType.ENTITY
            result = self.matcher.screen(Query(name, None, (country,) if country else (), entity))
            rules: set[str] = set()
            for m in result.matches:
                entry = self.matcher.entries.get((m.list_name, m.entry_id))
                source = entry.source if entry is not None else m.list_name
                if m.outcome is Outcome.MATCH:
                    rules |= {r.id for r in self.rules if r.covers(source) or r.covers(m.list_name)}
            self._listed[key] = (rules, result.status is Outcome.POTENTIAL_MATCH)
        return self._listed[key]

    def blocked(self, org_id: int, rule: OwnershipRule, seen: frozenset[int] = frozenset()) -> bool:
        """An organisation blocked under `rule`: listed itself, or owned at or over the threshold
        by blocked owners. A cycle is broken where it closes (no share passes round it)."""
        key = (org_id, rule.id)
        if key in self._blocked:
            return self._blocked[key]
        if org_id in seen:
            return False
        name, country = self.names[org_id]
        blocked = rule.id in self.listed("entity", name, country)[0]
        if not blocked:
            blocked = self.share(org_id, rule, seen | {org_id})[0] >= rule.threshold
        self._blocked[key] = blocked
        return blocked

    def share(
        self, org_id: int, rule: OwnershipRule, seen: frozenset[int] = frozenset()
    ) -> tuple[float, list[dict[str, object]]]:
        """The aggregate share of `org_id` held by owners blocked under `rule`, and who."""
        total = 0.0
        path: list[dict[str, object]] = []
        for owner in self.owners.get(org_id, ()):
            if owner.owner_org_id is not None:
                hit = self.blocked(owner.owner_org_id, rule, seen | {org_id})
            else:
                hit = rule.id in self.listed(owner.kind, owner.name, owner.country)[0]
            if hit:
                total += owner.percent
                path.append({"owner": owner.name, "kind": owner.kind, "percent": owner.percent})
        return min(total, 100.0), path

    def finding(self, org_id: int, day: date) -> Finding:
        best = Finding()
        for rule in self.rules:
            if not rule.in_force(day):
                continue
            name, country = self.names[org_id]
            if rule.id in self.listed("entity", name, country)[0]:
                continue  # listed itself: name screening's business (screening_status)
            share, path = self.share(org_id, rule, frozenset({org_id}))
            if share >= rule.threshold:
                if best.status != RESTRICTED or share > best.share:
                    best = Finding(RESTRICTED, share, rule.id, path)
            elif best.status != RESTRICTED and share > best.share:
                best = Finding(REVIEW if share >= self.review else CLEAR, share, rule.id, path)
        if best.status == CLEAR:
            maybe = [
                o for o in self.owners.get(org_id, ())
                if o.owner_org_id is None and self.listed(o.kind, o.name, o.country)[1]
            ]  # fmt: skip
            if maybe:  # possibly listed owners: a person decides
                best.status = REVIEW
                best.path = [{"owner": o.name, "kind": o.kind, "percent": o.percent,
                              "possible_match": True} for o in maybe]  # fmt: skip
        return best


def screen_ownership(
    conn: Connection,
    matcher: Matcher,
    *,
    review: float,
    day: date | None = None,
    rules: Sequence[OwnershipRule] = RULES,
    org_ids: Iterable[int] | None = None,
) -> dict[int, Finding]:
    """Compute and store every organisation's ownership status (in the caller's transaction);
    returns the ones that changed. Members of a changed org get fresh facts on every worker."""
    day = day or datetime.now(UTC).date()
    rows = conn.execute(sa.select(orgs)).all()
    names = {r.id: (r.name, r.country) for r in rows}
    owners: dict[int, list[_Owner]] = {}
    for o in conn.execute(sa.select(org_owners)).all():
        owners.setdefault(o.org_id, []).append(
            _Owner(o.kind, o.name, o.owner_org_id, o.percent, o.country)
        )
    graph = _Graph(names, owners, matcher, rules, review)
    wanted = set(org_ids) if org_ids is not None else set(names)
    changed: dict[int, Finding] = {}
    for row in rows:
        if row.id not in wanted:
            continue
        found = graph.finding(row.id, day)
        before = (row.ownership_status, round(row.listed_owner_share, 4), row.ownership_rule)
        if before == (found.status, round(found.share, 4), found.rule):
            continue
        conn.execute(
            sa.update(orgs)
            .where(orgs.c.id == row.id)
            .values(
                ownership_status=found.status,
                listed_owner_share=found.share,
                ownership_rule=found.rule,
                ownership_path=found.path,
            )
        )
        if found.status != row.ownership_status:
            touch_members(conn, row.id)
        changed[row.id] = found
    return changed


def finding_on(
    conn: Connection, matcher: Matcher, org_id: int, *, review: float, day: date
) -> Finding:
    """One organisation's ownership status on `day`, computed, not stored (`policy check --at`:
    the rules in force then, over today's declared owners and lists)."""
    names = {r.id: (r.name, r.country) for r in conn.execute(sa.select(orgs))}
    owners: dict[int, list[_Owner]] = {}
    for o in conn.execute(sa.select(org_owners)).all():
        owners.setdefault(o.org_id, []).append(
            _Owner(o.kind, o.name, o.owner_org_id, o.percent, o.country)
        )
    return _Graph(names, owners, matcher, RULES, review).finding(org_id, day)


def rule_by_id(rule_id: str | None) -> OwnershipRule | None:
    return next((r for r in RULES if r.id == rule_id), None)


def as_json(row: Any) -> dict[str, object]:
    """An org's ownership status as operators see it (`orgs show`)."""
    rule = rule_by_id(row.ownership_rule)
    return {
        "ownership_status": row.ownership_status,
        "restricted_by_ownership": row.ownership_status == RESTRICTED,
        "listed_owner_share": row.listed_owner_share,
        "ownership_rule": row.ownership_rule,
        "ownership_citation": rule.citation if rule else None,
        "ownership_path": row.ownership_path or [],
    }
