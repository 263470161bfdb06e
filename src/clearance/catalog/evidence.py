"""Classification evidence: named evaluation scores and the training compute (reported, or
estimated as 6·N·D), recorded per model; the model is classified again from it at once."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clearance.catalog.classification import Thresholds, check_eval_name, classify_model
from clearance.catalog.models import Model
from clearance.catalog.service import Changes, load_catalog
from clearance.errors import InvalidInput, NotFound
from clearance.store import versions
from clearance.store.tables import model_evaluations, models


def estimate(parameters: float, tokens: float) -> float:
    """C ≈ 6·N·D training FLOPs: about 6 operations per parameter per training token, forward
    and backward (Kaplan et al. 2020, arXiv:2001.08361 §2.1; Epoch AI's compute estimates)."""
    for value, what in ((parameters, "--parameters"), (tokens, "--tokens")):
        if not math.isfinite(value) or value <= 0:
            raise InvalidInput(f"{what} must be a positive number, not {value!r}")
    return 6.0 * parameters * tokens


def _check_source(source: str | None) -> str | None:
    if source is None:
        return None
    source = source.strip()
    if not source or len(source) > 2000 or not re.match(r"^\S+$", source):
        raise InvalidInput("--source must be one URL or document reference, at most 2000 chars")
    return source


def record(
    conn: Connection,
    thresholds: Thresholds,
    model_id: str,
    *,
    evaluations: Sequence[tuple[str, float]] = (),
    source: str | None = None,
    parameters: float | None = None,
    tokens: float | None = None,
    training_compute: float | None = None,
) -> tuple[Model, Changes]:
    """Store the evidence (an evaluation replaces the model's earlier score of that name) and
    classify the model again against `thresholds`; bumps the catalog version."""
    if (parameters is None) != (tokens is None):
        raise InvalidInput("--parameters and --tokens go together")
    if training_compute is not None and parameters is not None:
        raise InvalidInput("give --training-compute or --parameters with --tokens, not both")
    if training_compute is not None and (
        not math.isfinite(training_compute) or training_compute <= 0
    ):
        raise InvalidInput(f"--training-compute must be positive, not {training_compute!r}")
    if not evaluations and training_compute is None and parameters is None:
        raise InvalidInput(
            "no evidence: give --eval NAME=SCORE, --training-compute or --parameters"
        )
    names = [check_eval_name(name) for name, _ in evaluations]
    if len(set(names)) != len(names):
        raise InvalidInput("an evaluation is given twice")
    for name, score in evaluations:
        if not math.isfinite(score):
            raise InvalidInput(f"the score of {name} must be a finite number")
    source = _check_source(source)

    current = load_catalog(conn, thresholds).models.get(model_id)
    if current is None:
        raise NotFound(f"unknown model {model_id!r}")
    if current.retired:
        raise InvalidInput(f"model {model_id!r} is retired: its classification is closed")
    now = datetime.now(UTC)
    for name, score in evaluations:
        conn.execute(
            sa.delete(model_evaluations).where(
                model_evaluations.c.model_id == model_id, model_evaluations.c.name == name
            )
        )
        conn.execute(
            sa.insert(model_evaluations).values(
                model_id=model_id, name=name, score=score, source=source, recorded_at=now
            )
        )
    if parameters is not None and tokens is not None:
        values = {
            "training_compute": estimate(parameters, tokens),
            "parameters": parameters,
            "tokens": tokens,
        }
        conn.execute(sa.update(models).where(models.c.id == model_id).values(**values))
    elif training_compute is not None:
        conn.execute(
            sa.update(models)
            .where(models.c.id == model_id)
            .values(training_compute=training_compute, parameters=None, tokens=None)
        )
    # Classified again from everything now on record, and stored for readers without thresholds.
    fresh = load_catalog(conn).models[model_id]
    result = classify_model(fresh, thresholds)
    conn.execute(
        sa.update(models)
        .where(models.c.id == model_id)
        .values(
            controlled=result.controlled,
            rationale=result.rationale,
            classification_rule=result.rule,
        )
    )
    versions.bump(conn, versions.Kind.CATALOG)
    model = load_catalog(conn, thresholds).models[model_id]
    before, after = _summary(current), _summary(model)
    changes = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    return model, changes


def _summary(m: Model) -> dict[str, object]:
    return {
        "classification": m.classification.value,
        "classification_rule": m.classification_rule,
        "training_compute": m.training_compute,
        "evaluations": {e.name: e.score for e in m.evaluations},
    }
