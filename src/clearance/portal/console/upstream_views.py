"""Upstreams in the console: where each model is served from, changed or removed.

GET  /upstreams                  every upstream: kind, base URL, the environment variable its API
                                 key is read from (a name, never a secret), the models using it
                                                                                          viewer
POST /upstreams/{name}/update    `kind`, `base_url`, `api_key_env` (blank: none), `reason`
                                                                                          operator
POST /upstreams/{name}/remove    `reason`: only an upstream no model uses                 operator

The changes are `catalog.actions.update_upstream|remove_upstream`, as `clearance upstreams
update|remove` and the operator API make them, with the same entries (`upstream.update` with the
changes, `upstream.remove`) and the reason added. Each form carries the upstream's version
(`catalog.service.upstream_version`): one changed since the page was rendered is 409.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clearance.catalog import actions, service
from clearance.catalog.models import Catalog, UpstreamKind
from clearance.errors import InvalidInput
from clearance.portal.console.context import (
    Console,
    FieldError,
    done_params,
    reason,
    text,
)
from clearance.portal.operators import OPERATOR, VIEWER
from clearance.store import reading


class UpstreamViews:
    def __init__(self, console: Console) -> None:
        self.console = console

    def _load(self) -> Catalog:
        with reading(self.console.portal.engine) as conn:
            return service.load_catalog(conn)

    async def page(self, request: Request) -> Response:
        signed = await self.console.require(request, VIEWER)
        catalog = await asyncio.to_thread(self._load)
        used: dict[str, list[str]] = {name: [] for name in catalog.upstreams}
        for model in catalog.models.values():
            used.setdefault(model.upstream, []).append(model.id)
        index, action = done_params(request)
        return self.console.page(
            request,
            "upstreams.html",
            upstreams=[catalog.upstreams[n] for n in sorted(catalog.upstreams)],
            versions={n: service.upstream_version(u) for n, u in catalog.upstreams.items()},
            used=used,
            kinds=[k.value for k in UpstreamKind],
            can_change=signed.can(OPERATOR),
            done=index,
            action=action,
        )

    async def update(self, request: Request) -> Response:
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        name, why, version = request.path_params["name"], reason(form), _version(form)
        kind = text(form, "kind", limit=16)
        if kind not in {k.value for k in UpstreamKind}:
            raise FieldError("kind", "choose openai or anthropic")
        base_url = _checked(form, "base_url", service.check_base_url)
        env = _checked(form, "api_key_env", service.check_env_name, required=False)
        result = await asyncio.to_thread(
            lambda: actions.update_upstream(
                self.console.portal.engine,
                self.console.recorder(signed, why),
                name,
                kind=UpstreamKind(kind),
                base_url=base_url,
                api_key_env=env or None,
                clear_api_key_env=not env,
                version=version,
            )
        )
        return _back(request, "update", result["audit_index"])

    async def remove(self, request: Request) -> Response:
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        name, why, version = request.path_params["name"], reason(form), _version(form)
        result = await asyncio.to_thread(
            lambda: actions.remove_upstream(
                self.console.portal.engine,
                self.console.recorder(signed, why),
                name,
                version=version,
            )
        )
        return _back(request, "remove", result["audit_index"])


def _checked(
    form: FormData, field: str, check: Callable[[str], object], *, required: bool = True
) -> str:
    """The field's text once the catalog's own check of it passed (its refusal names the field)."""
    value = text(form, field, required=required, limit=512)
    if value:
        try:
            check(value)
        except InvalidInput as exc:
            raise FieldError(field, exc.detail) from exc
    return value


def _back(request: Request, action: str, index: object) -> Response:
    root = request.scope.get("root_path", "")
    return RedirectResponse(f"{root}/upstreams?done={index}&action={action}", status_code=303)


def _version(form: FormData) -> str:
    value = text(form, "version", limit=64)
    if not re.fullmatch(r"[0-9a-f]{20}", value):
        raise FieldError("version", "not a version this console issued: reload the page")
    return value
