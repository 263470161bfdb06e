"""Catalog behaviour: register upstreams and models, fallback chains, suspend and resume."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.catalog.classification import ClassificationResult
from clearance.catalog.models import Catalog, Classification, Model, Upstream, UpstreamKind
from clearance.errors import Conflict, InvalidInput, NotFound
from clearance.store import versions
from clearance.store.tables import model_fallbacks, models, upstreams

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


def _check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise InvalidInput(f"invalid {what} {value!r}: letters, digits and . _ : / - only")
    return value


def add_upstream(
    conn: Connection, name: str, kind: UpstreamKind, base_url: str, api_key_env: str | None
) -> Upstream:
    _check_name(name, "upstream name")
    if not re.match(r"^https?://[^\s]+$", base_url):
        raise InvalidInput(f"invalid base URL {base_url!r}: expected http(s)://host[:port][/path]")
    if conn.execute(sa.select(upstreams.c.name).where(upstreams.c.name == name)).first():
        raise Conflict(f"upstream {name!r} already exists")
    conn.execute(
        sa.insert(upstreams).values(
            name=name,
            kind=kind.value,
            base_url=base_url.rstrip("/"),
            api_key_env=api_key_env,
            created_at=datetime.now(UTC),
        )
    )
    versions.bump(conn, versions.Kind.CATALOG)
    return Upstream(name, kind, base_url.rstrip("/"), api_key_env)


def add_model(
    conn: Connection,
    model_id: str,
    *,
    upstream: str,
    upstream_model: str | None,
    classification: ClassificationResult,
    explicit: Classification | None,
    fallbacks: tuple[str, ...] = (),
) -> Model:
    _check_name(model_id, "model id")
    catalog = load_catalog(conn)
    if model_id in catalog.models:
        raise Conflict(f"model {model_id!r} already exists")
    if upstream not in catalog.upstreams:
        raise NotFound(f"unknown upstream {upstream!r}; add it with `clearance upstreams add`")
    _check_fallbacks(catalog, model_id, fallbacks)
    conn.execute(
        sa.insert(models).values(
            id=model_id,
            upstream=upstream,
            upstream_model=upstream_model or model_id,
            training_compute=classification.training_compute,
            explicit_classification=explicit.value if explicit else None,
            controlled=classification.controlled,
            rationale=classification.rationale,
            suspended=False,
            created_at=datetime.now(UTC),
        )
    )
    _write_fallbacks(conn, model_id, fallbacks)
    versions.bump(conn, versions.Kind.CATALOG)
    return load_catalog(conn).models[model_id]


def set_fallbacks(conn: Connection, model_id: str, fallbacks: tuple[str, ...]) -> None:
    catalog = load_catalog(conn)
    if model_id not in catalog.models:
        raise NotFound(f"unknown model {model_id!r}")
    _check_fallbacks(catalog, model_id, fallbacks)
    conn.execute(sa.delete(model_fallbacks).where(model_fallbacks.c.model_id == model_id))
    _write_fallbacks(conn, model_id, fallbacks)
    versions.bump(conn, versions.Kind.CATALOG)


def _write_fallbacks(conn: Connection, model_id: str, fallbacks: tuple[str, ...]) -> None:
    if fallbacks:
        conn.execute(
            sa.insert(model_fallbacks),
            [
                {"model_id": model_id, "position": i, "target_id": t}
                for i, t in enumerate(fallbacks)
            ],
        )


def _check_fallbacks(catalog: Catalog, model_id: str, fallbacks: tuple[str, ...]) -> None:
    if len(set(fallbacks)) != len(fallbacks):
        raise InvalidInput("a fallback target is listed twice")
    for target in fallbacks:
        if target == model_id:
            raise Conflict(f"model {model_id!r} cannot fall back to itself")
        if target not in catalog.models:
            raise NotFound(f"fallback target {target!r} does not exist; add it first")
    # Refuse cycles: no target may (transitively) fall back to model_id.
    graph = {m.id: m.fallbacks for m in catalog.models.values()}
    graph[model_id] = fallbacks
    path = _find_cycle(graph, model_id)
    if path:
        raise Conflict("fallback cycle refused: " + " -> ".join(path))


def _find_cycle(graph: dict[str, tuple[str, ...]], start: str) -> list[str] | None:
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    while stack:
        node, path = stack.pop()
        for nxt in graph.get(node, ()):
            if nxt == start:
                return [*path, nxt]
            if nxt not in path:
                stack.append((nxt, [*path, nxt]))
    return None


def suspend(conn: Connection, model_id: str, reason: str) -> Model:
    if not reason.strip():
        raise InvalidInput("a suspension needs a --reason")
    return _set_suspension(conn, model_id, True, reason.strip())


def resume(conn: Connection, model_id: str) -> Model:
    return _set_suspension(conn, model_id, False, None)


def _set_suspension(conn: Connection, model_id: str, suspended: bool, reason: str | None) -> Model:
    result = conn.execute(
        sa.update(models)
        .where(models.c.id == model_id)
        .values(
            suspended=suspended,
            suspended_reason=reason,
            suspended_at=datetime.now(UTC) if suspended else None,
        )
    )
    if result.rowcount == 0:
        raise NotFound(f"unknown model {model_id!r}")
    versions.bump(conn, versions.Kind.CATALOG)
    return load_catalog(conn).models[model_id]


def load_catalog(conn: Connection) -> Catalog:
    version = versions.read_all(conn).get(versions.Kind.CATALOG.value, 0)
    ups = {
        r.name: Upstream(r.name, UpstreamKind(r.kind), r.base_url, r.api_key_env)
        for r in conn.execute(sa.select(upstreams))
    }
    chains: dict[str, list[str]] = {}
    for r in conn.execute(
        sa.select(model_fallbacks).order_by(model_fallbacks.c.model_id, model_fallbacks.c.position)
    ):
        chains.setdefault(r.model_id, []).append(r.target_id)
    mods = {
        r.id: Model(
            id=r.id,
            upstream=r.upstream,
            upstream_model=r.upstream_model,
            controlled=bool(r.controlled),
            rationale=r.rationale,
            training_compute=r.training_compute,
            explicit_classification=(
                Classification(r.explicit_classification) if r.explicit_classification else None
            ),
            suspended=bool(r.suspended),
            suspended_reason=r.suspended_reason,
            suspended_at=r.suspended_at,
            fallbacks=tuple(chains.get(r.id, ())),
        )
        for r in conn.execute(sa.select(models).order_by(models.c.id))
    }
    return Catalog(version=version, upstreams=ups, models=mods)
