"""The operator API's catalog routes (mounted with the others at /admin/api); each change is an
audit entry naming the token, answered with the same JSON as the CLI's `--json`
(catalog/actions.py) and that entry's `audit_index`.

GET  /upstreams                                        catalog:read
POST /upstreams/{upstream}/update  {"kind"?, "base_url"?, "api_key_env"? (null: none)}
                                                       catalog:write
POST /upstreams/{upstream}/remove                      catalog:write  (409 while a model uses it)
POST /models/{model}/update  {"fallbacks"?, "upstream"?, "upstream_model"?,
                              "input_price"?, "output_price"?}  catalog:write
POST /models/{model}/reclassify  {"classification", "rationale", "evidence"?}  catalog:write
POST /models/{model}/retire  {"reason"}                catalog:write  (for good: no un-retire)
POST /models/{model}/restore  {"percent"? | "orgs"? | "internal"?, "reason"?}   catalog:write
     (lift a suspension: one phased-restore step to a cohort, or for everyone with none)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clearance.admin.tokens import AdminToken, Scope
from clearance.catalog import actions, service
from clearance.catalog.actions import Record
from clearance.catalog.models import Classification, UpstreamKind, upstream_json
from clearance.errors import InvalidInput
from clearance.store import reading

if TYPE_CHECKING:
    from clearance.admin.routes import AdminApi

BodyReader = Callable[[Request], Awaitable[dict[str, Any]]]
MAX_FALLBACKS = 32
MAX_ORGS = 100


class CatalogRoutes:
    def __init__(self, api: AdminApi, read_body: BodyReader) -> None:
        self.api = api
        self.read_body = read_body

    def routes(self) -> list[Route]:
        r = self.api.route
        return [
            r("/upstreams", Scope.CATALOG_READ, self.upstreams, "GET"),
            r("/upstreams/{upstream}/update", Scope.CATALOG_WRITE, self.update_upstream, "POST"),
            r("/upstreams/{upstream}/remove", Scope.CATALOG_WRITE, self.remove_upstream, "POST"),
            r("/models/{model}/update", Scope.CATALOG_WRITE, self.update_model, "POST"),
            r("/models/{model}/reclassify", Scope.CATALOG_WRITE, self.reclassify, "POST"),
            r("/models/{model}/retire", Scope.CATALOG_WRITE, self.retire, "POST"),
            r("/models/{model}/restore", Scope.CATALOG_WRITE, self.restore, "POST"),
        ]

    def recorder(self, token: AdminToken) -> Record:
        def record(action: str, target: str, details: dict[str, object]) -> int:
            return self.api.record(token, action, target, details)

        return record

    async def body(self, request: Request, allowed: set[str]) -> dict[str, Any]:
        body = await self.read_body(request)
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise InvalidInput(
                f"unknown field {unknown[0]!r}; expected {', '.join(sorted(allowed))}"
            )
        return body

    async def upstreams(self, _request: Request, _token: AdminToken) -> Response:
        def run() -> list[dict[str, object]]:
            with reading(self.api.engine) as conn:
                catalog = service.load_catalog(conn)
            return [upstream_json(u) for u in catalog.upstreams.values()]

        return JSONResponse({"upstreams": await run_in_threadpool(run)})

    async def update_upstream(self, request: Request, token: AdminToken) -> Response:
        body = await self.body(request, {"kind", "base_url", "api_key_env"})
        kind = optional_text(body, "kind")
        if kind is not None and kind not in {k.value for k in UpstreamKind}:
            raise InvalidInput("'kind' must be openai or anthropic")
        clear = "api_key_env" in body and body["api_key_env"] is None
        name = request.path_params["upstream"]

        def run() -> dict[str, object]:
            return actions.update_upstream(
                self.api.engine,
                self.recorder(token),
                name,
                kind=UpstreamKind(kind) if kind else None,
                base_url=optional_text(body, "base_url"),
                api_key_env=None if clear else optional_text(body, "api_key_env"),
                clear_api_key_env=clear,
            )

        return JSONResponse(await run_in_threadpool(run))

    async def remove_upstream(self, request: Request, token: AdminToken) -> Response:
        name = request.path_params["upstream"]

        def run() -> dict[str, object]:
            return actions.remove_upstream(self.api.engine, self.recorder(token), name)

        return JSONResponse(await run_in_threadpool(run))

    async def update_model(self, request: Request, token: AdminToken) -> Response:
        body = await self.body(
            request, {"fallbacks", "upstream", "upstream_model", "input_price", "output_price"}
        )
        fallbacks = body.get("fallbacks")
        if fallbacks is not None and (
            not isinstance(fallbacks, list)
            or len(fallbacks) > MAX_FALLBACKS
            or not all(isinstance(f, str) and 0 < len(f) <= 200 for f in fallbacks)
        ):
            raise InvalidInput(f"'fallbacks' must be a list of at most {MAX_FALLBACKS} model ids")
        upstream = optional_text(body, "upstream")
        upstream_model = optional_text(body, "upstream_model")
        prices = {}
        for name in ("input_price", "output_price"):  # per million tokens; "" or null: unpriced
            if name in body:
                value = body[name]
                if value is not None and not isinstance(value, str | int | float):
                    raise InvalidInput(f"'{name}' must be an amount")
                prices[name] = "" if value is None else str(value)
        model_id = request.path_params["model"]

        def run() -> dict[str, object]:
            return actions.update_model(
                self.api.engine,
                self.recorder(token),
                model_id,
                fallbacks=tuple(fallbacks) if fallbacks is not None else None,
                upstream=upstream,
                upstream_model=upstream_model,
                **prices,
            )

        return JSONResponse(await run_in_threadpool(run))

    async def reclassify(self, request: Request, token: AdminToken) -> Response:
        body = await self.body(request, {"classification", "rationale", "evidence"})
        value = required_text(body, "classification")
        if value not in {c.value for c in Classification}:
            raise InvalidInput("'classification' must be controlled or uncontrolled")
        rationale = required_text(body, "rationale")
        evidence = optional_text(body, "evidence")
        model_id = request.path_params["model"]

        def run() -> dict[str, object]:
            return actions.reclassify(
                self.api.engine,
                self.recorder(token),
                model_id,
                Classification(value),
                rationale,
                evidence,
            )

        return JSONResponse(await run_in_threadpool(run))

    async def retire(self, request: Request, token: AdminToken) -> Response:
        reason = required_text(await self.body(request, {"reason"}), "reason")
        model_id = request.path_params["model"]

        def run() -> dict[str, object]:
            return actions.retire(self.api.engine, self.recorder(token), model_id, reason)

        return JSONResponse(await run_in_threadpool(run))

    async def restore(self, request: Request, token: AdminToken) -> Response:
        body = await self.body(request, {"percent", "orgs", "internal", "reason"})
        percent = body.get("percent")
        if percent is not None and (
            not isinstance(percent, int) or isinstance(percent, bool) or not 1 <= percent <= 100
        ):
            raise InvalidInput("'percent' must be an integer from 1 to 100")
        orgs = body.get("orgs")
        if orgs is not None and (
            not isinstance(orgs, list)
            or not 0 < len(orgs) <= MAX_ORGS
            or not all(isinstance(o, str) and 0 < len(o) <= 200 for o in orgs)
        ):
            raise InvalidInput(f"'orgs' must be a list of 1 to {MAX_ORGS} organisation names")
        internal = body.get("internal", False)
        if not isinstance(internal, bool):
            raise InvalidInput("'internal' must be true or false")
        reason = optional_text(body, "reason")
        model_id = request.path_params["model"]

        def run() -> dict[str, object]:
            return actions.resume(
                self.api.engine,
                self.recorder(token),
                model_id,
                percent=percent,
                orgs=tuple(orgs or ()),
                internal_orgs=self.api.settings.policy.internal_orgs if internal else None,
                reason=reason,
            )

        return JSONResponse(await run_in_threadpool(run))


def optional_text(body: dict[str, Any], name: str) -> str | None:
    if body.get(name) is None:
        return None
    return required_text(body, name)


def required_text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > 2000:
        raise InvalidInput(f"{name!r} must be a non-empty string of at most 2000 characters")
    return value.strip()
