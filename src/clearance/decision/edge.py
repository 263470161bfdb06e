"""A decision for an edge that enforces it itself (Envoy ext_authz, nginx auth_request, Caddy
forward_auth, Traefik forwardAuth, a LiteLLM hook): the original request as the edge describes
it in, the answer and the headers to add upstream out, the decision entry durable before the
answer leaves Clearance, so before the edge contacts the upstream (docs/integrations.md).

The model comes from the body when the edge sends it; else from the header the edge sets
(`[edge] model_header`) or from a path template (`[edge] model_paths`, Azure- and Bedrock-style
`/openai/deployments/{model}/chat/completions`, `/model/{model}/invoke`). Without the body the
answer can only be as right as that header: the edge must set it itself, never pass the
client's, and route each served model to an upstream that serves only it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from clearance.decision.attempt import Attempt
from clearance.decision.payload import parse_payload
from clearance.decision.service import DecisionService
from clearance.decision.surfaces import ROUTES, Route, Surface, error_body, surface_for
from clearance.errors import (
    AuditUnavailable,
    ClearanceError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
)
from clearance.net.client import country_of
from clearance.policy.models import Effect

# Headers Clearance sets upstream; one a client sent itself is removed first (and identity
# headers a client might use to claim to be someone). The client's Clearance key never goes
# upstream: the edge adds the provider's own credential.
UPSTREAM_HEADERS = (
    "x-clearance-model-served",
    "x-clearance-upstream-model",
    "x-clearance-decision",
    "x-clearance-subject",
    "x-clearance-audit-index",
)
REMOVE_HEADERS = (*UPSTREAM_HEADERS, "authorization", "x-api-key", "x-user-id", "x-user-email")


@dataclass(frozen=True, slots=True)
class EdgeRequest:
    """The original request, as the edge saw it."""

    method: str
    path: str  # its path, without the query
    headers: Mapping[bytes, bytes]  # lower-case names
    body: bytes | None = None  # None: the edge sent no body
    truncated: bool = False  # the edge cut the body at its size limit
    client: str = ""  # the client's address, as the edge saw it
    query: bytes = b""


@dataclass(slots=True)
class EdgeAnswer:
    status: int  # 200 when allowed; else the refusal's own status (401, 403, 451, 503 ...)
    surface: Surface
    effect: str | None = None  # allow | fallback | deny; None: refused before a decision
    model_served: str | None = None
    rule: str | None = None
    reason: str | None = None  # the rule's reason, or the error's detail
    legal_basis: str | None = None
    index: int | None = None  # the decision entry
    upstream_headers: list[tuple[str, str]] = field(default_factory=list)
    remove_headers: Sequence[str] = REMOVE_HEADERS
    body: bytes = b""  # a refusal, in the SDK's shape
    headers: list[tuple[str, str]] = field(default_factory=list)  # of the refusal

    @property
    def allowed(self) -> bool:
        return self.status == 200


class ModelPaths:
    """`[edge] model_paths`: templates such as /openai/deployments/{model}/chat/completions."""

    def __init__(self, templates: Sequence[str]) -> None:
        self._patterns = []
        for template in templates:
            head, _, tail = template.partition("{model}")
            pattern = re.escape(head) + r"(?P<model>[^/]+)" + re.escape(tail)
            self._patterns.append(re.compile(pattern + ("" if tail.endswith("/") else "$")))

    def match(self, path: str) -> tuple[str, str] | None:
        """(model, the rest of the path) for a path one template matches."""
        for pattern in self._patterns:
            found = pattern.match(path)
            if found is not None:
                return found.group("model"), path[found.end() :]
        return None


def route_of(path: str, headers: Mapping[bytes, bytes], paths: ModelPaths) -> tuple[Route, str]:
    """The API route of the original path, and the model its path names ("" if none)."""
    route = ROUTES.get(path)
    if route is not None:
        return route, ""
    templated = paths.match(path)
    if templated is not None:
        model, _ = templated
        suffix = next((p for p in ROUTES if path.endswith(p.removeprefix("/v1"))), None)
        if suffix is None:  # e.g. Bedrock's /model/{model}/invoke: the surface says the shape
            surface = surface_for(path, dict(headers))
            suffix = "/v1/messages" if surface is Surface.ANTHROPIC else "/v1/chat/completions"
        return ROUTES[suffix], model
    raise NotFound(f"no such endpoint: {path}")


async def check(service: DecisionService, request: EdgeRequest, paths: ModelPaths) -> EdgeAnswer:
    """The decision for one original request; never raises for the request's own faults: every
    refusal is an answer (and, once the caller is known, an entry)."""
    headers = dict(request.headers)
    surface = surface_for(request.path, headers)
    try:
        route, path_model = route_of(request.path, headers, paths)
        surface = route.surface
        if request.method.upper() != "POST":
            raise InvalidInput(f"{request.path} accepts POST only")
    except ClearanceError as exc:
        return _error(surface, exc)
    attempt = Attempt(route=route, started=time.perf_counter())
    try:
        attempt.caller = await service.authenticate(headers, request.query, request.client)
    except ClearanceError as exc:
        service.count_refusal(request.client, surface, exc)
        return _error(surface, exc)
    attempt.ip_country = country_of(request.client)
    try:
        payload, model = _model(request, headers, path_model, service)
    except ClearanceError as exc:
        service.metrics.rejections.labels(str(exc.status)).inc()
        await service.recorder.rejected(attempt, exc)
        return _error(surface, exc)
    if payload is not None:
        attempt.stream = payload.get("stream") is True
    try:
        decision = await service.decide(attempt, payload, model)
    except ClearanceError as exc:
        return _error(surface, exc)
    service.start_record(attempt)
    try:
        await service.release(attempt)  # the entry is durable before the edge hears anything
    except AuditUnavailable as exc:
        return _error(surface, exc)
    index_header = []
    if attempt.index is not None:
        index_header.append(("clearance-audit-index", str(attempt.index)))
    first = decision.reasons[0]
    if decision.effect is Effect.DENY:
        if attempt.guard is not None and attempt.guard.verdict.flagged:
            await service.record_flag(attempt, attempt.guard, decision.model_requested)
        status, body, raw = service.refusal(surface, decision, attempt.index, [])
        return EdgeAnswer(
            status=status,
            surface=surface,
            effect=decision.effect.value,
            rule=first.rule,
            reason=first.reason,
            legal_basis=first.legal_basis,
            index=attempt.index,
            body=body,
            headers=[*_text(raw), ("content-type", "application/json"), *index_header],
        )
    assert decision.model_served is not None and attempt.caller is not None
    served = service.state.catalog.models[decision.model_served]
    upstream = [
        ("x-clearance-model-served", served.id),
        ("x-clearance-upstream-model", served.upstream_model),
        ("x-clearance-decision", decision.effect.value),
        ("x-clearance-subject", attempt.caller.pseudonym),
    ]
    if attempt.index is not None:
        upstream.append(("x-clearance-audit-index", str(attempt.index)))
    return EdgeAnswer(
        status=200,
        surface=surface,
        effect=decision.effect.value,
        model_served=served.id,
        rule=first.rule,
        reason=first.reason,
        legal_basis=first.legal_basis,
        index=attempt.index,
        upstream_headers=upstream,
    )


def _model(
    request: EdgeRequest,
    headers: Mapping[bytes, bytes],
    path_model: str,
    service: DecisionService,
) -> tuple[dict[str, object] | None, str]:
    """The parsed body (None when the edge sent none) and the model asked for."""
    named = headers.get(service.model_header, b"").decode("latin-1").strip() or path_model
    if request.body is None or request.body == b"":
        if not named:
            raise InvalidInput(
                "no model: the edge sent no body and no model header or path; send the body"
                f" or set {service.model_header.decode()}",
                reason="no_model",
            )
        return None, named
    if request.truncated:
        raise PayloadTooLarge(
            "the edge cut the request body at its size limit: raise it (Envoy ext_authz"
            " with_request_body.max_request_bytes) so the whole request can be checked"
        )
    if len(request.body) > service.settings.max_body_bytes:
        raise PayloadTooLarge("request body too large")
    payload, model = parse_payload(request.body)
    if named and named != model:
        raise InvalidInput(
            f"the model the edge names ({named!r}) is not the body's ({model!r})",
            reason="model_mismatch",
        )
    return payload, model


def _error(surface: Surface, exc: ClearanceError) -> EdgeAnswer:
    headers = [("content-type", "application/json")]
    if isinstance(exc, RateLimited):  # RFC 6585 §4, RFC 9110 §10.2.3
        headers.append(("retry-after", str(exc.retry_after)))
    return EdgeAnswer(
        status=exc.status,
        surface=surface,
        rule=exc.code,
        reason=exc.detail,
        body=error_body(surface, exc.status, exc.detail, exc.code),
        headers=headers,
    )


def _text(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]


def ascii_json(body: bytes) -> str:
    """A JSON body as one header value (for nginx, which can return a header, not a body):
    non-ASCII escaped (the standard library's encoder can, orjson cannot), so it is a valid
    field value (RFC 9110 §5.5)."""
    return json.dumps(orjson.loads(body), ensure_ascii=True, separators=(",", ":"))
