"""Limits as stored: set, list, and the table every worker loads (bumping `limits` on change,
so each worker reloads it at its next poll or notification, never per request)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from clearance.errors import InvalidInput, NotFound
from clearance.limits.models import Limit, Period, Scope, Values
from clearance.limits.table import LimitTable
from clearance.principals import service as principals
from clearance.store import reading, versions
from clearance.store.tables import api_keys, limits, orgs, users

MAX_BUDGET = Decimal("1e12")
_N = TypeVar("_N", int, Decimal)


def target_of(conn: Connection, scope: Scope, name: str | None) -> tuple[str, str]:
    """The stored target of an operator's name for it (email, org name, key id) and that name."""
    if scope is Scope.DEFAULT:
        return "", ""
    if not name:
        raise InvalidInput(f"--{scope.value} needs a value")
    if scope is Scope.USER:
        return str(principals.get_user(conn, name).id), name
    if scope is Scope.ORG:
        return str(principals.get_org(conn, name).id), name
    found = conn.execute(sa.select(api_keys.c.id).where(api_keys.c.id == name)).first()
    if found is None:
        raise NotFound(f"unknown API key {name!r}")
    return name, name


def parse_budget(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidInput(f"--budget must be an amount, like 25 or 12.50; got {text!r}") from exc
    if not amount.is_finite() or amount < 0 or amount > MAX_BUDGET:
        raise InvalidInput(f"--budget must be from 0 to {MAX_BUDGET:f}; got {text!r}")
    return amount


def merge(current: Values, change: Values) -> Values:
    """The stored values after a change: a given value replaces, 0 removes, None keeps."""

    merged = Values(
        rpm=_pick(current.rpm, change.rpm),
        tpm=_pick(current.tpm, change.tpm),
        concurrent=_pick(current.concurrent, change.concurrent),
        budget=_pick(current.budget, change.budget),
        period=current.period if change.period is None else change.period,
    )
    if change.budget == 0:  # removing the budget removes its period
        merged = replace(merged, period=None)
    if merged.budget is not None and merged.period is None:
        raise InvalidInput("--budget needs --period day|month")
    if merged.period is not None and merged.budget is None:
        raise InvalidInput("--period needs --budget AMOUNT")
    return merged


def _pick(old: _N | None, new: _N | None) -> _N | None:
    if new is None:
        return old
    return None if new == 0 else new


def set_limit(
    conn: Connection, scope: Scope, name: str | None, change: Values, actor: str
) -> Limit | None:
    """Change one scope's limits (None: unchanged; 0: removed); returns the row, or None when
    nothing is left limited there (the row is deleted)."""
    for flag, value in (
        ("rpm", change.rpm),
        ("tpm", change.tpm),
        ("concurrent", change.concurrent),
    ):
        if value is not None and value < 0:
            raise InvalidInput(f"--{flag} must be 0 (no limit) or more; got {value}")
    target, shown = target_of(conn, scope, name)
    where = (limits.c.scope == scope.value) & (limits.c.target == target)
    row = conn.execute(sa.select(limits).where(where)).first()
    current = Values() if row is None else _values(row)
    merged = merge(current, change)
    versions.bump(conn, versions.Kind.LIMITS)
    now = datetime.now(UTC)
    if not any(v is not None for v in merged.astuple()):
        conn.execute(sa.delete(limits).where(where))
        return None
    stored = {
        "rpm": merged.rpm,
        "tpm": merged.tpm,
        "concurrent": merged.concurrent,
        "budget": merged.budget,
        "period": None if merged.period is None else merged.period.value,
        "updated_by": actor,
        "updated_at": now,
    }
    if row is None:
        conn.execute(sa.insert(limits).values(scope=scope.value, target=target, **stored))
    else:
        conn.execute(sa.update(limits).where(where).values(**stored))
    return Limit(scope, target, merged, actor, now, shown)


def list_limits(conn: Connection) -> list[Limit]:
    """Every stored limit, the default first, with the name an operator knows each target by."""
    rows = conn.execute(sa.select(limits).order_by(limits.c.scope, limits.c.target)).all()
    emails = {r.id: r.email for r in conn.execute(sa.select(users.c.id, users.c.email))}
    names = {r.id: r.name for r in conn.execute(sa.select(orgs.c.id, orgs.c.name))}
    out = []
    for r in rows:
        scope = Scope(r.scope)
        if scope is Scope.USER:
            name = emails.get(int(r.target), f"user {r.target} (gone)")
        elif scope is Scope.ORG:
            name = names.get(int(r.target), f"org {r.target} (gone)")
        else:
            name = r.target
        out.append(_limit(r, name))
    order = list(Scope)
    return sorted(out, key=lambda lim: (order.index(lim.scope), lim.name))


def load_table(engine: Engine) -> LimitTable:
    """What the request path consults: every row (small; read once per change)."""
    with reading(engine) as conn:
        rows = conn.execute(sa.select(limits)).all()
    return LimitTable(_limit(r) for r in rows)


def _values(r: sa.Row[tuple[object, ...]]) -> Values:
    return Values(
        rpm=r.rpm,
        tpm=r.tpm,
        concurrent=r.concurrent,
        budget=None if r.budget is None else Decimal(r.budget),
        period=None if r.period is None else Period(r.period),
    )


def _limit(r: sa.Row[tuple[object, ...]], name: str = "") -> Limit:
    updated = r.updated_at
    if updated.tzinfo is None:  # SQLite keeps no zone; we store UTC
        updated = updated.replace(tzinfo=UTC)
    return Limit(
        Scope(r.scope),
        r.target,
        _values(r),
        r.updated_by,
        updated,
        name,
    )
