"""Operator actions on the catalog, shared by the CLI and the operator API: each change is made
in one transaction (which bumps the catalog version every worker polls), then recorded as an
audit entry; the answer is the same JSON either way, with that entry's index."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Connection, Engine

from clearance.catalog import evidence, service
from clearance.catalog.classification import Thresholds
from clearance.catalog.models import Classification, UpstreamKind, model_json, upstream_json
from clearance.errors import InvalidInput

# (action, target, details) -> the audit index, once durable: the CLI's Runtime.record or the
# operator API's AdminApi.record, each naming its own actor.
Record = Callable[[str, str, dict[str, object]], int]


def update_upstream(
    engine: Engine,
    record: Record,
    name: str,
    *,
    kind: UpstreamKind | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
    clear_api_key_env: bool = False,
    version: str | None = None,
) -> dict[str, object]:
    with engine.begin() as conn:
        if version is not None:
            service.check_upstream_version(conn, name, version)
        upstream, changes = service.update_upstream(
            conn,
            name,
            kind=kind,
            base_url=base_url,
            api_key_env=api_key_env,
            clear_api_key_env=clear_api_key_env,
        )
    index = record("upstream.update", name, {"changes": changes})
    return {**upstream_json(upstream), "audit_index": index}


def remove_upstream(
    engine: Engine, record: Record, name: str, *, version: str | None = None
) -> dict[str, object]:
    with engine.begin() as conn:
        if version is not None:
            service.check_upstream_version(conn, name, version)
        service.remove_upstream(conn, name)
    index = record("upstream.remove", name, {})
    return {"name": name, "removed": True, "audit_index": index}


def update_model(
    engine: Engine,
    record: Record,
    model_id: str,
    *,
    fallbacks: tuple[str, ...] | None = None,
    upstream: str | None = None,
    upstream_model: str | None = None,
    input_price: str | None = None,
    output_price: str | None = None,
    version: str | None = None,
) -> dict[str, object]:
    with engine.begin() as conn:
        _check(conn, model_id, version)
        model, changes = service.update_model(
            conn,
            model_id,
            fallbacks=fallbacks,
            upstream=upstream,
            upstream_model=upstream_model,
            input_price=input_price,
            output_price=output_price,
        )
    index = record("model.update", model_id, {"changes": changes})
    return {**model_json(model), "audit_index": index}


def suspend(
    engine: Engine, record: Record, model_id: str, reason: str, *, version: str | None = None
) -> dict[str, object]:
    """The kill switch: the model is refused to everyone, on every worker within the
    invalidation bound; a phased restore in progress ends. Audit "model.suspend"."""
    with engine.begin() as conn:
        _check(conn, model_id, version)
        model = service.suspend(conn, model_id, reason)
    index = record("model.suspend", model_id, {"reason": model.suspended_reason})
    return {**model_json(model), "audit_index": index}


def _check(conn: Connection, model_id: str, version: str | None) -> None:
    """With `version` (the console's forms carry it), refuse a change to a model that changed
    since the page was rendered (409)."""
    if version is not None:
        service.check_version(conn, model_id, version)


def reclassify(
    engine: Engine,
    record: Record,
    model_id: str,
    classification: Classification,
    rationale: str,
    evidence: str | None = None,
    *,
    version: str | None = None,
) -> dict[str, object]:
    with engine.begin() as conn:
        _check(conn, model_id, version)
        model, changes = service.reclassify(conn, model_id, classification, rationale, evidence)
    details: dict[str, object] = {
        "classification": model.classification.value,
        "rationale": model.rationale,
        "evidence": model.evidence,
        "changes": changes,
    }
    index = record("model.reclassify", model_id, details)
    return {**model_json(model), "audit_index": index}


def retire(
    engine: Engine, record: Record, model_id: str, reason: str, *, version: str | None = None
) -> dict[str, object]:
    with engine.begin() as conn:
        _check(conn, model_id, version)
        model, unlinked = service.retire(conn, model_id, reason)
    details: dict[str, object] = {"reason": model.retired_reason, "unlinked_from": unlinked}
    index = record("model.retire", model_id, details)
    return {**model_json(model), "unlinked_from": unlinked, "audit_index": index}


def record_evidence(
    engine: Engine,
    record: Record,
    thresholds: Thresholds,
    model_id: str,
    *,
    evaluations: tuple[tuple[str, float], ...] = (),
    source: str | None = None,
    parameters: float | None = None,
    tokens: float | None = None,
    training_compute: float | None = None,
    version: str | None = None,
) -> dict[str, object]:
    """Classification evidence for a model, classified again at once; audit "model.evidence"."""
    with engine.begin() as conn:
        _check(conn, model_id, version)
        model, changes = evidence.record(
            conn,
            thresholds,
            model_id,
            evaluations=evaluations,
            source=source,
            parameters=parameters,
            tokens=tokens,
            training_compute=training_compute,
        )
    details: dict[str, object] = {
        "evaluations": [{"name": n, "score": s} for n, s in evaluations],
        "source": source,
        "parameters": parameters,
        "tokens": tokens,
        "training_compute": model.training_compute,
        "classification_rule": model.classification_rule,
        "changes": changes,
    }
    index = record("model.evidence", model_id, details)
    return {**model_json(model), "audit_index": index}


def resume(
    engine: Engine,
    record: Record,
    model_id: str,
    *,
    percent: int | None = None,
    orgs: tuple[str, ...] = (),
    internal_orgs: tuple[str, ...] | None = None,
    reason: str | None = None,
    version: str | None = None,
) -> dict[str, object]:
    """Lift a suspension: for everyone (no cohort, or 100 %), or one phased-restore step to a
    cohort (catalog/restore.py). The entry names the cohort before and after the step."""
    reason = reason.strip() if reason is not None else None
    if reason is not None and (not reason or len(reason) > 2000):
        raise InvalidInput("--reason must be non-empty and at most 2000 characters")
    with engine.begin() as conn:
        _check(conn, model_id, version)
        if percent is None and not orgs and internal_orgs is None:
            before = service.load_catalog(conn).models.get(model_id)
            model = service.resume(conn, model_id)
            previous = before.restore if before is not None else None
        else:
            model, previous = service.restore(
                conn, model_id, percent=percent, org_names=orgs, internal_orgs=internal_orgs
            )
    details: dict[str, object] = {
        "reason": reason,
        "status": model.state,
        "cohort": model.restore.as_json() if model.restore is not None else "everyone",
        "previous_cohort": previous.as_json() if previous is not None else None,
    }
    index = record("model.resume", model_id, details)
    return {**model_json(model), "audit_index": index}
