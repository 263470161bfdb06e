"""Envoy ext_authz over gRPC: `envoy.service.auth.v3.Authorization/Check`, served beside the HTTP
port by every `clearance serve` worker (`[edge] ext_authz_port`, `--ext-authz-port`;
docs/integrations-envoy.md).

The original request is the one Envoy describes in `CheckRequest.attributes.request.http`:
its method, its path (the query cut off), its headers (lower-case keys; `header_map` when the
filter sends `encode_raw_headers`), and its body when the filter has `with_request_body`
(`raw_body` with `pack_as_bytes`, else `body`; a body Envoy cut at `max_request_bytes` comes
with `x-envoy-auth-partial-body: true` and is refused with 413). The client is
`attributes.source.address`, the downstream address as Envoy saw it; when that address is one of
`[gateway] trusted_proxies` (a load balancer in front of Envoy), the client is taken from its
`X-Forwarded-For` exactly as the HTTP surfaces do (net/client.py).

The answer is `clearance.decision.edge.check`'s, the decision entry durable before it leaves:

- allowed (status OK): `ok_response.headers` sets the `x-clearance-*` headers (the served model,
  for a route to match on; the subject's pseudonym; the audit index), overwriting any the client
  sent; `headers_to_remove` strips the rest of them and the client's Clearance key
  (`authorization`, `x-api-key`) and identity headers, so the upstream sees only what Clearance
  set and the credential the edge adds itself;
- refused (PERMISSION_DENIED; UNAUTHENTICATED for a 401): `denied_response` with the HTTP status
  (451 included: `envoy.type.v3.StatusCode` has no member for it, but proto3 enums are open and
  Envoy sends the number on), the SDK-shaped JSON body and its headers (`Link`, the audit index,
  `Retry-After`);
- a CheckRequest with no HTTP request in it is refused with 400, and any fault of Clearance's
  own with 503: nothing but a decision is ever OK.

Every worker binds the same port with SO_REUSEPORT (gRPC's default on Linux, set explicitly
here): the kernel spreads Envoy's connections over the workers, as it spreads HTTP connections
over uvicorn's. gRPC multiplexes on few long-lived connections, so the spread is per
connection: Envoy opens at least one per worker thread (`--concurrency`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from google.rpc import code_pb2

from clearance.config import Settings
from clearance.decision.edge import EdgeAnswer, EdgeRequest, ModelPaths, check
from clearance.decision.service import DecisionService
from clearance.decision.surfaces import Surface, error_body
from clearance.errors import ClearanceError, InvalidInput
from clearance.net.client import ClientLocator

log = logging.getLogger("clearance.envoy")

PARTIAL_BODY = b"x-envoy-auth-partial-body"  # set by Envoy when it cut the body at its limit
OVERWRITE = base_pb2.HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD
# Room for the headers and attributes around a body of max_body_bytes.
MESSAGE_OVERHEAD = 1024 * 1024
GRACE_SECONDS = 5.0


class ExtAuthz(external_auth_pb2_grpc.AuthorizationServicer):  # type: ignore[misc]
    """The Authorization service: one Check, one decision."""

    def __init__(self, service: DecisionService, settings: Settings) -> None:
        self.service = service
        self.paths = ModelPaths(settings.edge.model_paths)
        self.locator = ClientLocator(settings.gateway.trusted_proxies)

    async def Check(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            original = self.original(request)
        except ClearanceError as exc:
            return respond(refusal(Surface.OPENAI, exc))
        try:
            answer = await check(self.service, original, self.paths)
        except Exception:  # a fault of ours is a refusal, never an allow (nor Envoy's guess)
            log.exception("ext_authz Check failed")
            detail = "Clearance could not decide; try again"
            body = error_body(Surface.OPENAI, 503, detail, "decision_unavailable")
            answer = EdgeAnswer(status=503, surface=Surface.OPENAI, reason=detail, body=body,
                                headers=[("content-type", "application/json")])  # fmt: skip
        return respond(answer)

    def original(self, request: Any) -> EdgeRequest:
        """The original request Envoy describes; InvalidInput when it describes none."""
        attributes = request.attributes
        if not (attributes.HasField("request") and attributes.request.HasField("http")):
            raise InvalidInput(
                "the CheckRequest describes no HTTP request (attributes.request.http)",
                reason="no_original_request",
            )
        http = attributes.request.http
        headers = _headers(http)
        target = http.path or headers.get(b":path", b"").decode("latin-1")
        if not target.startswith("/"):
            raise InvalidInput(
                "the CheckRequest names no request path", reason="no_original_request"
            )
        path, _, query = target.partition("?")
        method = http.method or headers.get(b":method", b"").decode("latin-1")
        if http.raw_body:
            body: bytes | None = bytes(http.raw_body)
        elif http.body:
            body = http.body.encode("utf-8")
        else:
            body = None
        source = attributes.source.address.socket_address.address
        return EdgeRequest(
            method=method.upper(),
            path=unquote(path),
            headers=headers,
            body=body,
            truncated=headers.get(PARTIAL_BODY, b"").lower() == b"true",
            client=self._client(source, headers),
            query=query.encode("latin-1", "replace"),
        )

    def _client(self, source: str, headers: Mapping[bytes, bytes]) -> str:
        """The downstream address Envoy saw; behind a trusted proxy, the client it forwarded."""
        if not self.locator.trusted:
            return source
        scope = {"type": "http", "client": (source, 0), "headers": list(headers.items())}
        return self.locator.address(scope)


def _headers(http: Any) -> dict[bytes, bytes]:
    """The request's headers, lower-case names: the `headers` map, or `header_map` (Envoy's
    `encode_raw_headers`, repeated names joined as the map joins them)."""
    if http.headers:
        return {k.lower().encode("latin-1"): v.encode("utf-8") for k, v in http.headers.items()}
    joined: dict[bytes, bytes] = {}
    for entry in http.header_map.headers:
        name = entry.key.lower().encode("latin-1")
        value = bytes(entry.raw_value) if entry.raw_value else entry.value.encode("utf-8")
        joined[name] = joined[name] + b"," + value if name in joined else value
    return joined


def refusal(surface: Surface, exc: ClearanceError) -> EdgeAnswer:
    body = error_body(surface, exc.status, exc.detail, exc.code)
    return EdgeAnswer(status=exc.status, surface=surface, reason=exc.detail, body=body,
                      headers=[("content-type", "application/json")])  # fmt: skip


def respond(answer: EdgeAnswer) -> Any:
    """The CheckResponse for an answer."""
    response = external_auth_pb2.CheckResponse()
    if answer.allowed:
        response.status.code = code_pb2.OK
        ok = response.ok_response
        for name, value in answer.upstream_headers:
            option = ok.headers.add()
            option.header.key = name
            option.header.value = value
            option.append_action = OVERWRITE
        # Whatever Clearance did not set itself, the client may have: removed. (Envoy removes
        # after it sets, so a header both set and listed here would be lost.)
        ours = {name for name, _ in answer.upstream_headers}
        ok.headers_to_remove.extend(h for h in answer.remove_headers if h not in ours)
        return response
    response.status.code = (
        code_pb2.UNAUTHENTICATED if answer.status == 401 else code_pb2.PERMISSION_DENIED
    )
    response.status.message = answer.reason or ""
    denied = response.denied_response
    # StatusCode is a proto3 (open) enum: a number it has no member for, 451, is kept as is.
    denied.status.code = answer.status
    denied.body = answer.body.decode("utf-8")
    for name, value in answer.headers:
        option = denied.headers.add()
        option.header.key = name
        option.header.value = value
        option.append_action = OVERWRITE
    return response


class ExtAuthzServer:
    """The gRPC server of one worker; `start` binds `host:port` (SO_REUSEPORT: the workers of
    one `clearance serve` share it), `stop` lets in-flight Checks finish."""

    def __init__(self, service: DecisionService, settings: Settings) -> None:
        self.settings = settings
        limit = settings.gateway.max_body_bytes + MESSAGE_OVERHEAD
        self.server = grpc.aio.server(
            options=[
                ("grpc.so_reuseport", 1),
                ("grpc.max_receive_message_length", limit),
                # Envoy keeps its connections open; let idle ones live, answer its pings.
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ]
        )
        external_auth_pb2_grpc.add_AuthorizationServicer_to_server(
            ExtAuthz(service, settings), self.server
        )
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        """Bind and serve; returns the port (a free one when `port` is 0)."""
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self.port = self.server.add_insecure_port(address)
        except RuntimeError as exc:  # newer grpcio raises; older ones return 0
            raise OSError(f"cannot serve ext_authz on {address}: {exc}") from exc
        if not self.port:
            raise OSError(f"cannot serve ext_authz on {address}")
        await self.server.start()
        log.info("Envoy ext_authz (gRPC) on %s", address)
        return self.port

    async def stop(self, grace: float = GRACE_SECONDS) -> None:
        await self.server.stop(grace)
