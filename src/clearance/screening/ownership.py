"""Ownership screening: an organisation owned 50 % or more by blocked or listed parties is itself
restricted, listed or not (OFAC's 50 Percent Rule; BIS's Affiliates Rule while in force).

How the share is counted, per OFAC's guidance of 13 Aug 2014 and FAQs 398-402:
- the shares of different blocked owners add up (30 % + 25 % = 55 %: restricted);
- an entity blocked by the rule counts as a blocked owner of what it owns, so the status runs
  down a chain (A 50 % SDN-owned owns 60 % of B: B is restricted);
- shares are not multiplied along a chain (40 % of a company that owns 100 % of another blocks
  neither): only an owner that is itself blocked passes its share on.

The graph: owners declared by an operator, imported from an organisation's FtM or BODS file
(principals/owner_import.py), and the ownership the loaded list data carries (FtM `Ownership`
records between listed and unlisted parties). A declared or imported entity that the list data
knows under the same name (case and punctuation aside) is that party, owned as the list says.

Each rule is dated data (ownership_rules.toml): it applies only on days it is in force. A share
from `[screening] ownership_review` percent up to the threshold, or owners who may be listed
(a potential match), send the organisation to review. The path that led to a restriction is for
operators only, never for the organisation's members (who are told only that access is blocked
pending review: no tip-off of which list).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.errors import ConfigError
from clearance.principals.service import touch_members
from clearance.screening import repository
from clearance.screening.matcher import Matcher
from clearance.screening.models import EntityType, Outcome, Query
from clearance.store.tables import imported_holdings, org_owners, orgs

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


Node = tuple[str, str, str]
"""A party of the ownership graph: ("org", org id, "") a Clearance organisation; ("imp", import
id, ref) a party of an imported file; ("list", list name, id) a party of a list's own data."""


def _org(org_id: int) -> Node:
    return ("org", str(org_id), "")


def name_key(name: str) -> str:
    """Names that link a declared party to the list data's: the same words, case and
    punctuation aside. Exact on purpose: a loose link would restrict an organisation by a
    look-alike's owners."""
    return " ".join(_WORDS.findall(name.casefold()))


_WORDS = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class _Edge:
    owner: Node | None  # None: a named party known by its name only (screened by name)
    kind: str
    name: str
    country: str | None
    percent: float
    via: str  # declared | imported | the list whose data says so


@dataclass(slots=True)
class GraphData:
    """Who owns what, from declarations, imported files and the lists' own data."""

    names: dict[Node, tuple[str, str, str | None]] = field(default_factory=dict)
    owners: dict[Node, list[_Edge]] = field(default_factory=dict)


def load_graph(conn: Connection) -> GraphData:
    data = GraphData()
    names, owners = data.names, data.owners
    for r in conn.execute(sa.select(orgs.c.id, orgs.c.name, orgs.c.country)):
        names[_org(r.id)] = ("entity", r.name, r.country)
    held = conn.execute(sa.select(imported_holdings)).all()
    imported = {(str(h.import_id), h.asset_ref) for h in held}

    def inner(import_id: int | None, ref: str | None) -> Node | None:
        if import_id is None or ref is None or (str(import_id), ref) not in imported:
            return None
        return ("imp", str(import_id), ref)

    for h in held:
        asset: Node = ("imp", str(h.import_id), h.asset_ref)
        names.setdefault(asset, ("entity", h.asset_name, None))
        owner = _org(h.owner_org_id) if h.owner_org_id else inner(h.import_id, h.owner_ref)
        owners.setdefault(asset, []).append(
            _Edge(owner, h.owner_kind, h.owner_name, h.owner_country, h.percent, "imported")
        )
    for o in conn.execute(sa.select(org_owners)):
        owner = _org(o.owner_org_id) if o.owner_org_id else inner(o.import_id, o.ref)
        via = "imported" if o.import_id else "declared"
        owners.setdefault(_org(o.org_id), []).append(
            _Edge(owner, o.kind, o.name, o.country, o.percent, via)
        )
    for list_name, lh in repository.holdings(conn):
        asset = ("list", list_name, lh.asset_id)
        holder: Node = ("list", list_name, lh.owner_id)
        names.setdefault(asset, ("entity", lh.asset_name, lh.asset_country))
        names.setdefault(holder, (lh.owner_kind, lh.owner_name, None))
        owners.setdefault(asset, []).append(
            _Edge(holder, lh.owner_kind, lh.owner_name, None, lh.percent, list_name)
        )
    return data


class _Graph:
    def __init__(
        self,
        data: GraphData,
        matcher: Matcher,
        rules: Sequence[OwnershipRule],
        review: float,
    ) -> None:
        self.names = data.names
        self.owners = data.owners
        self.matcher = matcher
        self.rules = rules
        self.review = review
        self._listed: dict[tuple[str, str, str | None], tuple[set[str], bool]] = {}
        self._blocked: dict[tuple[Node, str], bool] = {}
        # The list data's owned companies by name: where a declared or imported party is one.
        self.twins: dict[str, list[Node]] = {}
        for node in self.owners:
            if node[0] == "list":
                self.twins.setdefault(name_key(self.names[node][1]), []).append(node)

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

    def _listed_node(self, node: Node, rule: OwnershipRule) -> bool:
        if node[0] == "list":  # the list's own party: an entry of that list, or not listed
            entry = self.matcher.entries.get((node[1], node[2]))
            return entry is not None and (rule.covers(entry.source) or rule.covers(node[1]))
        kind, name, country = self.names[node]
        return rule.id in self.listed(kind, name, country)[0]

    def _twins(self, kind: str, name: str, country: str | None) -> list[Node]:
        if kind == "person" or not self.twins:
            return []
        return [
            t for t in self.twins.get(name_key(name), ())
            if not (country and self.names[t][2] and self.names[t][2] != country)
        ]  # fmt: skip

    def blocked(self, node: Node, rule: OwnershipRule, seen: frozenset[Node] = frozenset()) -> bool:
        """A party blocked under `rule`: listed itself, or owned at or over the threshold by
        blocked owners. A cycle is broken where it closes (no share passes round it)."""
        key = (node, rule.id)
        if key in self._blocked:
            return self._blocked[key]
        if node in seen:
            return False
        blocked = self._listed_node(node, rule)
        if not blocked:
            blocked = self.share(node, rule, seen | {node})[0] >= rule.threshold
        self._blocked[key] = blocked
        return blocked

    def _hit(self, edge: _Edge, rule: OwnershipRule, seen: frozenset[Node]) -> bool:
        if edge.owner is not None:
            return self.blocked(edge.owner, rule, seen)
        if rule.id in self.listed(edge.kind, edge.name, edge.country)[0]:
            return True
        twins = self._twins(edge.kind, edge.name, edge.country)
        return any(self.blocked(t, rule, seen) for t in twins)

    def share(
        self, node: Node, rule: OwnershipRule, seen: frozenset[Node] = frozenset()
    ) -> tuple[float, list[dict[str, object]]]:
        """The aggregate share of `node` held by owners blocked under `rule`, and who. A party
        the list data also knows (by name) counts as owned as the larger of the two says: the
        same owners are never added twice."""
        total = 0.0
        path: list[dict[str, object]] = []
        for edge in self.owners.get(node, ()):
            if self._hit(edge, rule, seen):
                total += edge.percent
                path.append({"owner": edge.name, "kind": edge.kind, "percent": edge.percent}
                            | ({"via": edge.via} if edge.via != "declared" else {}))  # fmt: skip
        if node[0] != "list":
            for twin in self._twins(*self.names[node]):
                if twin in seen:
                    continue
                found, through = self.share(twin, rule, seen | {twin})
                if found > total:
                    total, path = found, through
        return min(total, 100.0), path

    def finding(self, org_id: int, day: date) -> Finding:
        node = _org(org_id)
        best = Finding()
        for rule in self.rules:
            if not rule.in_force(day):
                continue
            name, country = self.names[node][1:]
            if rule.id in self.listed("entity", name, country)[0]:
                continue  # listed itself: name screening's business (screening_status)
            share, path = self.share(node, rule, frozenset({node}))
            if share >= rule.threshold:
                if best.status != RESTRICTED or share > best.share:
                    best = Finding(RESTRICTED, share, rule.id, path)
            elif best.status != RESTRICTED and share > best.share:
                best = Finding(REVIEW if share >= self.review else CLEAR, share, rule.id, path)
        if best.status == CLEAR:
            maybe = [
                o for o in self.owners.get(node, ())
                if o.owner is None and self.listed(o.kind, o.name, o.country)[1]
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
    graph = _Graph(load_graph(conn), matcher, rules, review)
    wanted = set(org_ids) if org_ids is not None else {r.id for r in rows}
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
    return _Graph(load_graph(conn), matcher, RULES, review).finding(org_id, day)


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
