"""The model catalog in the console, and the kill switch.

GET  /models                      every model: classification and the rule behind it, fallbacks,
                                  state (active, suspended, restoring to a cohort, retired)
GET  /models/{model}              one model, with the operator's forms
POST /models/{model}/suspend      `reason`                                   operator
POST /models/{model}/resume       `step` percent|orgs|internal|everyone, `percent`, `orgs`
                                  (comma-separated names), `reason`          operator
POST /models/{model}/reclassify   `classification`, `rationale`, `evidence`? operator
POST /models/{model}/update       `fallbacks` (comma-separated, in order; blank: none),
                                  `upstream`, `upstream_model`, `input_price`, `output_price`
                                  (per million tokens; both blank: not priced), `reason` operator
POST /models/{model}/retire       `reason`: refused to everyone for good      operator
POST /models/{model}/evidence     `evaluations` (NAME=SCORE, comma-separated), `source`?,
                                  `training_compute`? or `parameters` and `tokens`, `reason`:
                                  stored, and the model classified again      operator

Viewers see everything; every POST checks the operator role server-side (a hidden button is
no control). The changes go through `catalog.actions`, as `clearance models ...` and the
operator API do, so the entries are the same but for the actor (`portal:<subject>`). Each form
carries the model's version (`catalog.service.model_version`): a change to a model that changed
since the page was rendered is refused with 409, not applied over the other operator's. After a
change the page shows the audit entry's index.
"""

from __future__ import annotations

import asyncio
import re

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clearance.catalog import actions, service
from clearance.catalog.classification import Thresholds, check_score, parse_pair
from clearance.catalog.models import Catalog, Classification, model_json
from clearance.errors import InvalidInput
from clearance.portal.console.context import Console, FieldError, done_params, reason, text
from clearance.portal.operators import OPERATOR, VIEWER
from clearance.store import reading

MAX_ORGS = 100
MAX_FALLBACKS = 20


class ModelViews:
    def __init__(self, console: Console) -> None:
        self.console = console

    def _load(self) -> tuple[Catalog, dict[str, str]]:
        """The catalog as the gateway classifies it (the configured thresholds) and each model's
        version from what is stored."""
        portal = self.console.portal
        with reading(portal.engine) as conn:
            shown = service.load_catalog(conn, Thresholds.configured(portal.settings))
            stored = service.load_catalog(conn)
        versions = {k: service.model_version(m) for k, m in stored.models.items()}
        return shown, versions

    async def catalog(self, request: Request) -> Response:
        await self.console.require(request, VIEWER)
        shown, _ = await asyncio.to_thread(self._load)
        return self.console.page(request, "models.html", models=list(shown.models.values()))

    async def model(self, request: Request) -> Response:
        signed = await self.console.require(request, VIEWER)
        model_id = request.path_params["model"]
        shown, versions = await asyncio.to_thread(self._load)
        model = shown.models.get(model_id)
        if model is None:
            return self.console.page(request, "missing.html", status=404, what=f"model {model_id}")
        index, action = done_params(request)
        return self.console.page(
            request,
            "model.html",
            model=model,
            version=versions[model_id],
            chain=shown.fallback_chain(model_id),
            upstreams=sorted(shown.upstreams),
            prices=model_json(model),  # the prices as the CLI shows them (2.5, not 2.500000)
            can_change=signed.can(OPERATOR) and not model.retired,
            internal=bool(self.console.portal.settings.policy.internal_orgs),
            done=index,
            action=action,
        )

    def _back(self, request: Request, model_id: str, action: str, index: object) -> Response:
        root = request.scope.get("root_path", "")
        location = f"{root}/models/{model_id}?done={index}&action={action}"
        return RedirectResponse(location, status_code=303)

    async def suspend(self, request: Request) -> Response:
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        model_id, why, version = request.path_params["model"], reason(form), _version(form)
        engine = self.console.portal.engine
        result = await asyncio.to_thread(
            actions.suspend,
            engine,
            self.console.recorder(signed),
            model_id,
            why,
            version=version,
        )
        return self._back(request, model_id, "suspend", result["audit_index"])

    async def resume(self, request: Request) -> Response:
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        model_id, why, version = request.path_params["model"], reason(form), _version(form)
        step = text(form, "step", limit=16)
        percent: int | None = None
        orgs: tuple[str, ...] = ()
        internal: tuple[str, ...] | None = None
        if step == "percent":
            value = text(form, "percent", limit=3)
            if not value.isdigit() or not 1 <= int(value) <= 100:
                raise FieldError("percent", "a whole number from 1 to 100")
            percent = int(value)
        elif step == "orgs":
            orgs = tuple(o.strip() for o in text(form, "orgs").split(",") if o.strip())
            if not 0 < len(orgs) <= MAX_ORGS or any(len(o) > 200 for o in orgs):
                raise FieldError("orgs", f"1 to {MAX_ORGS} organisation names, comma-separated")
        elif step == "internal":
            internal = self.console.portal.settings.policy.internal_orgs
        elif step != "everyone":
            raise FieldError("step", "choose a percentage, organisations, internal or everyone")
        result = await asyncio.to_thread(
            lambda: actions.resume(
                self.console.portal.engine,
                self.console.recorder(signed),
                model_id,
                percent=percent,
                orgs=orgs,
                internal_orgs=internal,
                reason=why,
                version=version,
            )
        )
        return self._back(request, model_id, "resume", result["audit_index"])

    async def reclassify(self, request: Request) -> Response:
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        model_id, version = request.path_params["model"], _version(form)
        choice = text(form, "classification", limit=16)
        if choice not in (Classification.CONTROLLED, Classification.UNCONTROLLED):
            raise FieldError("classification", "choose controlled or uncontrolled")
        rationale = text(form, "rationale")
        evidence = text(form, "evidence", required=False) or None
        result = await asyncio.to_thread(
            lambda: actions.reclassify(
                self.console.portal.engine,
                self.console.recorder(signed),
                model_id,
                Classification(choice),
                rationale,
                evidence,
                version=version,
            )
        )
        return self._back(request, model_id, "reclassify", result["audit_index"])

    async def update(self, request: Request) -> Response:
        """Fallbacks, upstream and prices, as `clearance models update` changes them; the form
        sends every field as shown, so what the operator left alone is no change."""
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        model_id, why, version = request.path_params["model"], reason(form), _version(form)
        fallbacks = tuple(f.strip() for f in text(form, "fallbacks", required=False).split(","))
        fallbacks = tuple(f for f in fallbacks if f)
        upstream = text(form, "upstream", limit=200)
        upstream_model = text(form, "upstream_model", limit=200)
        prices = {
            k: text(form, k, required=False, limit=32) for k in ("input_price", "output_price")
        }
        priced: set[str] = set()
        for field, value in prices.items():
            try:
                if service.parse_price(value, field.removesuffix("_price")) is not None:
                    priced.add(field)
            except InvalidInput as exc:
                raise FieldError(field, "an amount per million tokens, like 2.50") from exc
        if len(priced) == 1:  # the catalog refuses it too; here the field is named
            raise FieldError("output_price", "price input and output tokens both, or neither")
        shown, _ = await asyncio.to_thread(self._load)
        if len(fallbacks) > MAX_FALLBACKS:
            raise FieldError("fallbacks", f"at most {MAX_FALLBACKS} models")
        unknown = [f for f in fallbacks if f not in shown.models]
        if unknown:
            raise FieldError("fallbacks", f"no model {unknown[0]!r} in the catalog")
        if upstream not in shown.upstreams:
            raise FieldError("upstream", f"no upstream {upstream!r}")
        result = await asyncio.to_thread(
            lambda: actions.update_model(
                self.console.portal.engine,
                self.console.recorder(signed, why),
                model_id,
                fallbacks=fallbacks,
                upstream=upstream,
                upstream_model=upstream_model,
                input_price=prices["input_price"],
                output_price=prices["output_price"],
                version=version,
            )
        )
        return self._back(request, model_id, "update", result["audit_index"])

    async def retire(self, request: Request) -> Response:
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        model_id, why, version = request.path_params["model"], reason(form), _version(form)
        result = await asyncio.to_thread(
            lambda: actions.retire(
                self.console.portal.engine,
                self.console.recorder(signed),
                model_id,
                why,
                version=version,
            )
        )
        return self._back(request, model_id, "retire", result["audit_index"])

    async def evidence(self, request: Request) -> Response:
        """Classification evidence, as `clearance models evidence` records it (the model is
        classified again at once against the configured thresholds)."""
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        model_id, why, version = request.path_params["model"], reason(form), _version(form)
        evaluations: list[tuple[str, float]] = []
        for pair in text(form, "evaluations", required=False).replace("\n", ",").split(","):
            if pair.strip():
                try:
                    evaluations.append(parse_pair(pair.strip(), "evaluation"))
                except InvalidInput as exc:
                    raise FieldError("evaluations", exc.detail) from exc
        numbers = {f: _number(form, f) for f in ("training_compute", "parameters", "tokens")}
        source = text(form, "source", required=False, limit=2000) or None
        result = await asyncio.to_thread(
            lambda: actions.record_evidence(
                self.console.portal.engine,
                self.console.recorder(signed, why),
                Thresholds.configured(self.console.portal.settings),
                model_id,
                evaluations=tuple(evaluations),
                source=source,
                version=version,
                **numbers,
            )
        )
        return self._back(request, model_id, "evidence", result["audit_index"])


def _number(form: FormData, field: str) -> float | None:
    value = text(form, field, required=False, limit=64)
    if not value:
        return None
    try:
        number = check_score(value, field)
    except InvalidInput as exc:
        raise FieldError(field, exc.detail) from exc
    if number <= 0:
        raise FieldError(field, "a positive number, like 3.8e25")
    return number


def _version(form: FormData) -> str:
    """The model's version the page was rendered with (required: no blind overwrite)."""
    value = text(form, "version", limit=64)
    if not re.fullmatch(r"[0-9a-f]{20}", value):
        raise FieldError("version", "not a version this console issued: reload the page")
    return value
