"""A threshold change previewed in the console: which models it would reclassify, and why.

GET /thresholds?compute=FLOP&evals=NAME=T,...&drop=NAME,...   the configured thresholds and,
                                                             given a proposal, the models whose
                                                             classification it would change
                                                             (from, to, the rule)     viewer

Nothing is applied: thresholds are configuration ([policy] controlled_compute_threshold and
[[policy.eval_thresholds]]), changed in the file and taken up by restarted workers, as
`clearance models thresholds` says. The proposal is `classification.propose` and the preview
`classification.preview`, as that command computes them.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from clearance.catalog import service
from clearance.catalog.classification import (
    Reclassification,
    Thresholds,
    check_eval_name,
    check_score,
    parse_pair,
    preview,
    propose,
)
from clearance.errors import InvalidInput
from clearance.portal.console.context import Console, FieldError
from clearance.portal.operators import VIEWER
from clearance.store import reading


class ThresholdViews:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def page(self, request: Request) -> Response:
        await self.console.require(request, VIEWER)
        query = request.query_params
        values = {f: query.get(f, "").strip() for f in ("compute", "evals", "drop")}
        for field, value in values.items():
            if len(value) > 2000:
                raise FieldError(field, "at most 2000 characters")
        current = Thresholds.configured(self.console.portal.settings)
        proposed = _proposal(current, **values) if any(values.values()) else None

        def run() -> list[Reclassification] | None:
            if proposed is None:
                return None
            with reading(self.console.portal.engine) as conn:
                catalog = service.load_catalog(conn, current)
            return preview(catalog.models.values(), current, proposed)

        changes = await asyncio.to_thread(run)
        return self.console.page(
            request,
            "thresholds.html",
            current=current,
            proposed=proposed,
            changes=changes,
            values=values,
        )


def _proposal(current: Thresholds, compute: str, evals: str, drop: str) -> Thresholds:
    try:
        flop = check_score(compute, "compute") if compute else None
    except InvalidInput as exc:
        raise FieldError("compute", exc.detail) from exc
    try:
        pairs = [parse_pair(e.strip(), "threshold") for e in evals.split(",") if e.strip()]
    except InvalidInput as exc:
        raise FieldError("evals", exc.detail) from exc
    try:
        dropped = [check_eval_name(d.strip()) for d in drop.split(",") if d.strip()]
    except InvalidInput as exc:
        raise FieldError("drop", exc.detail) from exc
    try:
        return propose(current, compute=flop, evaluations=pairs, drop=dropped)
    except InvalidInput as exc:
        raise FieldError("drop" if "drop" in exc.detail else "compute", exc.detail) from exc
