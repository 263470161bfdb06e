"""Catalog behaviour: upstreams and models added, changed and removed; fallback chains;
reclassification; suspension and retirement. Every change bumps the catalog version in its own
transaction, which is what every gateway worker polls."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.catalog.classification import ClassificationResult, Thresholds, classify_model
from clearance.catalog.models import (
    Catalog,
    Classification,
    Evaluation,
    Model,
    Upstream,
    UpstreamKind,
)
from clearance.catalog.restore import FULL, NOT_RESTORING, OrgRef, RestoreCohort
from clearance.errors import Conflict, InvalidInput, NotFound
from clearance.store import versions
from clearance.store.tables import model_evaluations, model_fallbacks, models, orgs, upstreams

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


def _check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise InvalidInput(f"invalid {what} {value!r}: letters, digits and . _ : / - only")
    return value


def check_base_url(base_url: str) -> str:
    if not re.match(r"^https?://[^\s]+$", base_url) or len(base_url) > 512:
        raise InvalidInput(f"invalid base URL {base_url!r}: expected http(s)://host[:port][/path]")
    return base_url.rstrip("/")


def check_env_name(name: str | None) -> str | None:
    if name is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$", name):
        raise InvalidInput(f"invalid --api-key-env {name!r}: an environment variable name")
    return name


def add_upstream(
    conn: Connection, name: str, kind: UpstreamKind, base_url: str, api_key_env: str | None
) -> Upstream:
    _check_name(name, "upstream name")
    check_base_url(base_url)
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
            classification_rule=classification.rule or None,
            parameters=classification.parameters,
            tokens=classification.tokens,
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
        if catalog.models[target].retired:
            raise Conflict(f"model {target!r} is retired and cannot be a fallback target")
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


Changes = dict[str, dict[str, object]]  # field -> {"from": old, "to": new}, for the audit entry


def update_upstream(
    conn: Connection,
    name: str,
    *,
    kind: UpstreamKind | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
    clear_api_key_env: bool = False,
) -> tuple[Upstream, Changes]:
    current = load_catalog(conn).upstreams.get(name)
    if current is None:
        raise NotFound(f"unknown upstream {name!r}")
    if api_key_env is not None and clear_api_key_env:
        raise InvalidInput("give --api-key-env or --clear-api-key-env, not both")
    new_env = None if clear_api_key_env else check_env_name(api_key_env) or current.api_key_env
    updated = Upstream(
        name,
        kind or current.kind,
        check_base_url(base_url) if base_url is not None else current.base_url,
        new_env,
    )
    changes = _diff(
        {
            "kind": current.kind.value,
            "base_url": current.base_url,
            "api_key_env": current.api_key_env,
        },
        {
            "kind": updated.kind.value,
            "base_url": updated.base_url,
            "api_key_env": updated.api_key_env,
        },
    )
    if not changes:
        raise InvalidInput("nothing to change: give --kind, --base-url or --api-key-env")
    conn.execute(
        sa.update(upstreams)
        .where(upstreams.c.name == name)
        .values(kind=updated.kind.value, base_url=updated.base_url, api_key_env=new_env)
    )
    versions.bump(conn, versions.Kind.CATALOG)
    return updated, changes


def remove_upstream(conn: Connection, name: str) -> None:
    """Only an upstream no model uses, retired ones included (they keep their record)."""
    catalog = load_catalog(conn)
    if name not in catalog.upstreams:
        raise NotFound(f"unknown upstream {name!r}")
    users = sorted(m.id for m in catalog.models.values() if m.upstream == name)
    if users:
        raise Conflict(
            f"upstream {name!r} is used by {', '.join(users)}: point them at another upstream "
            "(`clearance models update MODEL --upstream U`) first"
        )
    conn.execute(sa.delete(upstreams).where(upstreams.c.name == name))
    versions.bump(conn, versions.Kind.CATALOG)


def update_model(
    conn: Connection,
    model_id: str,
    *,
    fallbacks: tuple[str, ...] | None = None,
    upstream: str | None = None,
    upstream_model: str | None = None,
    input_price: str | None = None,
    output_price: str | None = None,
) -> tuple[Model, Changes]:
    catalog = load_catalog(conn)
    current = _changeable(catalog, model_id)
    if (
        fallbacks is None
        and upstream is None
        and upstream_model is None
        and (input_price is None and output_price is None)
    ):
        raise InvalidInput(
            "nothing to change: give --fallback, --upstream, --upstream-model or a price"
        )
    new_input = current.input_price if input_price is None else parse_price(input_price, "input")
    new_output = (
        current.output_price if output_price is None else parse_price(output_price, "output")
    )
    if (new_input is None) != (new_output is None):
        raise InvalidInput("a model is priced for input and output tokens both, or not at all")
    if fallbacks is not None:
        _check_fallbacks(catalog, model_id, fallbacks)
    if upstream is not None and upstream not in catalog.upstreams:
        raise NotFound(f"unknown upstream {upstream!r}; add it with `clearance upstreams add`")
    if upstream_model is not None:
        _check_name(upstream_model, "upstream model")
    new_upstream = upstream or current.upstream
    new_upstream_model = upstream_model or current.upstream_model
    new_fallbacks = current.fallbacks if fallbacks is None else fallbacks
    changes = _diff(
        {
            "upstream": current.upstream,
            "upstream_model": current.upstream_model,
            "fallbacks": list(current.fallbacks),
            "input_price": _price_text(current.input_price),
            "output_price": _price_text(current.output_price),
        },
        {
            "upstream": new_upstream,
            "upstream_model": new_upstream_model,
            "fallbacks": list(new_fallbacks),
            "input_price": _price_text(new_input),
            "output_price": _price_text(new_output),
        },
    )
    if not changes:
        raise InvalidInput("nothing to change: the model already has these settings")
    conn.execute(
        sa.update(models)
        .where(models.c.id == model_id)
        .values(
            upstream=new_upstream,
            upstream_model=new_upstream_model,
            input_price=new_input,
            output_price=new_output,
        )
    )
    if fallbacks is not None:
        conn.execute(sa.delete(model_fallbacks).where(model_fallbacks.c.model_id == model_id))
        _write_fallbacks(conn, model_id, fallbacks)
    versions.bump(conn, versions.Kind.CATALOG)
    return load_catalog(conn).models[model_id], changes


MAX_PRICE = Decimal(1_000_000)  # per million tokens


def parse_price(text: str, which: str) -> Decimal | None:
    """A price per million tokens, like 2.50 ("" or "none": not priced)."""
    if text.strip().lower() in ("", "none"):
        return None
    try:
        price = Decimal(text.strip())
    except InvalidOperation:
        raise InvalidInput(f"--{which}-price must be an amount, like 2.50; got {text!r}") from None
    if not price.is_finite() or not 0 <= price <= MAX_PRICE or price.as_tuple().exponent < -6:  # type: ignore[operator]
        raise InvalidInput(
            f"--{which}-price must be from 0 to {MAX_PRICE} with at most 6 decimals; got {text!r}"
        )
    return price


def _price_text(price: Decimal | None) -> str | None:
    return None if price is None else f"{price.normalize():f}"


def reclassify(
    conn: Connection,
    model_id: str,
    classification: Classification,
    rationale: str,
    evidence: str | None = None,
) -> tuple[Model, Changes]:
    """An explicit decision, recorded with its rationale and evidence; it wins over the training
    compute (classification.py), which is kept for the record."""
    rationale = rationale.strip()
    evidence = evidence.strip() if evidence is not None else None
    if not rationale or len(rationale) > 2000:
        raise InvalidInput("a reclassification needs a --rationale of at most 2000 characters")
    if evidence is not None and (not evidence or len(evidence) > 2000):
        raise InvalidInput("--evidence must be non-empty and at most 2000 characters")
    current = _changeable(load_catalog(conn), model_id)
    conn.execute(
        sa.update(models)
        .where(models.c.id == model_id)
        .values(
            explicit_classification=classification.value,
            controlled=classification is Classification.CONTROLLED,
            rationale=rationale,
            classification_evidence=evidence,
            classification_rule="explicit",
        )
    )
    versions.bump(conn, versions.Kind.CATALOG)
    model = load_catalog(conn).models[model_id]
    changes = _diff(
        {
            "classification": current.classification.value,
            "classification_source": current.classification_source,
            "rationale": current.rationale,
            "evidence": current.evidence,
        },
        {
            "classification": model.classification.value,
            "classification_source": model.classification_source,
            "rationale": model.rationale,
            "evidence": model.evidence,
        },
    )
    return model, changes


def retire(conn: Connection, model_id: str, reason: str) -> tuple[Model, list[str]]:
    """Retire a model for good: refused to everyone (the `model-retired` rule) and unlinked from
    every fallback list that named it; returns the models it was unlinked from. There is no
    un-retire: to serve it again, add it under a new id (docs/catalog.md)."""
    reason = reason.strip()
    if not reason or len(reason) > 2000:
        raise InvalidInput("a retirement needs a --reason of at most 2000 characters")
    catalog = load_catalog(conn)
    _changeable(catalog, model_id)
    unlinked = sorted(m.id for m in catalog.models.values() if model_id in m.fallbacks)
    conn.execute(
        sa.update(models)
        .where(models.c.id == model_id)
        .values(retired_reason=reason, retired_at=datetime.now(UTC))
    )
    conn.execute(sa.delete(model_fallbacks).where(model_fallbacks.c.target_id == model_id))
    versions.bump(conn, versions.Kind.CATALOG)
    return load_catalog(conn).models[model_id], unlinked


def _changeable(catalog: Catalog, model_id: str) -> Model:
    model = catalog.models.get(model_id)
    if model is None:
        raise NotFound(f"unknown model {model_id!r}")
    if model.retired:
        raise Conflict(f"model {model_id!r} is retired: it cannot be changed or un-retired")
    return model


def _diff(before: dict[str, object], after: dict[str, object]) -> Changes:
    return {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}


def upstream_version(upstream: Upstream) -> str:
    """A digest of an upstream as stored, for the same purpose as `model_version`."""
    return hashlib.sha256(repr(upstream).encode()).hexdigest()[:20]


def check_upstream_version(conn: Connection, name: str, expected: str) -> None:
    """Refuse (409) unless the upstream is as it was when `expected` was read, its row locked
    until the transaction ends (as `check_version` does for a model)."""
    conn.execute(sa.select(upstreams.c.name).where(upstreams.c.name == name).with_for_update())
    upstream = load_catalog(conn).upstreams.get(name)
    if upstream is None:
        raise NotFound(f"unknown upstream {name!r}")
    if upstream_version(upstream) != expected:
        raise Conflict(
            f"upstream {name!r} was changed since you opened it (by someone else, or in another "
            "tab): reload it, check it, and try again"
        )


def model_version(model: Model) -> str:
    """A digest of everything stored about a model: a form carries it so that a change made on
    a page rendered before another change is refused, not applied over it (no last write wins)."""
    return hashlib.sha256(repr(model).encode()).hexdigest()[:20]


def check_version(conn: Connection, model_id: str, expected: str) -> None:
    """Refuse (409) unless the model is as it was when `expected` was read. Its row is locked
    until the transaction ends (PostgreSQL; SQLite's write transaction excludes other writers),
    so the change that follows is made on exactly that version."""
    conn.execute(sa.select(models.c.id).where(models.c.id == model_id).with_for_update())
    model = load_catalog(conn).models.get(model_id)
    if model is None:
        raise NotFound(f"unknown model {model_id!r}")
    if model_version(model) != expected:
        raise Conflict(
            f"model {model_id!r} was changed since you opened it (by someone else, or in "
            "another tab): reload it, check its state, and try again"
        )


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
            **NOT_RESTORING,  # a suspension, and a full resume, end any phased restore
        )
    )
    if result.rowcount == 0:
        raise NotFound(f"unknown model {model_id!r}")
    versions.bump(conn, versions.Kind.CATALOG)
    return load_catalog(conn).models[model_id]


# -- phased restore (restore.py): from a suspension to a cohort, widened step by step ----------


def restore(
    conn: Connection,
    model_id: str,
    *,
    percent: int | None = None,
    org_names: tuple[str, ...] = (),
    internal_orgs: tuple[str, ...] | None = None,
) -> tuple[Model, RestoreCohort | None]:
    """One step of a phased restore: serve a suspended (or restoring) model again to a stable
    `percent` of people, the members of `org_names`, or of the configured `internal_orgs`, on top
    of whoever earlier steps admitted; 100 % is a full resume. Steps only widen: to narrow, suspend
    again. Returns the model and the cohort before the step."""
    given = [percent is not None, bool(org_names), internal_orgs is not None]
    if sum(given) != 1:
        raise InvalidInput("give one of --percent, --orgs or --internal")
    if percent is not None and not 1 <= percent <= FULL:
        raise InvalidInput(f"--percent must be from 1 to {FULL}")
    current = _changeable(load_catalog(conn), model_id)
    if not current.suspended and current.restore is None:
        raise Conflict(
            f"model {model_id!r} is not suspended: a phased restore starts from a suspension"
        )
    before = current.restore
    start = before or RestoreCohort()
    if percent is not None and percent < start.percent:
        raise Conflict(
            f"model {model_id!r} is already restored to {start.percent}%: steps only widen "
            "(suspend it again to start over)"
        )
    if percent == FULL:
        return _set_suspension(conn, model_id, False, None), before
    if internal_orgs is not None:
        if not internal_orgs:
            raise InvalidInput("no internal organisations: set [policy] internal_orgs")
        cohort = start.widen(orgs=_org_refs(conn, internal_orgs), internal=True)
    else:
        cohort = start.widen(percent=percent or 0, orgs=_org_refs(conn, org_names))
    conn.execute(
        sa.update(models)
        .where(models.c.id == model_id)
        .values(suspended=False, suspended_reason=None, suspended_at=None, **cohort.to_row())
    )
    versions.bump(conn, versions.Kind.CATALOG)
    return load_catalog(conn).models[model_id], before


def _org_refs(conn: Connection, names: tuple[str, ...]) -> tuple[OrgRef, ...]:
    found = {
        r.name: OrgRef(r.id, r.name)
        for r in conn.execute(sa.select(orgs.c.id, orgs.c.name).where(orgs.c.name.in_(names)))
    }
    missing = [n for n in names if n not in found]
    if missing:
        raise NotFound(f"unknown organisation {missing[0]!r}")
    return tuple(found[n] for n in dict.fromkeys(names))


def load_catalog(conn: Connection, thresholds: Thresholds | None = None) -> Catalog:
    """Every upstream and model. With `thresholds` (the configured ones), each model not
    classified explicitly is classified again from its evidence, so a changed threshold in the
    configuration applies on load; without, the classification stored at the last write."""
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
    evals: dict[str, list[Evaluation]] = {}
    for r in conn.execute(
        sa.select(model_evaluations).order_by(
            model_evaluations.c.model_id, model_evaluations.c.name
        )
    ):
        evals.setdefault(r.model_id, []).append(
            Evaluation(r.name, r.score, r.source, _utc(r.recorded_at))
        )
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
            evidence=r.classification_evidence,
            retired_reason=r.retired_reason,
            retired_at=r.retired_at,
            restore=RestoreCohort.from_row(r.restore_percent, r.restore_orgs, r.restore_internal),
            parameters=r.parameters,
            tokens=r.tokens,
            evaluations=tuple(evals.get(r.id, ())),
            classification_rule=r.classification_rule,
            input_price=None if r.input_price is None else Decimal(r.input_price),
            output_price=None if r.output_price is None else Decimal(r.output_price),
        )
        for r in conn.execute(sa.select(models).order_by(models.c.id))
    }
    if thresholds is not None:
        mods = {k: _classified(m, thresholds) for k, m in mods.items()}
    return Catalog(version=version, upstreams=ups, models=mods)


def _classified(model: Model, thresholds: Thresholds) -> Model:
    result = classify_model(model, thresholds)
    return replace(
        model,
        controlled=result.controlled,
        rationale=result.rationale,
        classification_rule=result.rule,
    )


def _utc(when: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    return when if when.tzinfo else when.replace(tzinfo=UTC)
