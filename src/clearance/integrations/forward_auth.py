"""HTTP forward-auth: `GET|POST /authz/check`, for Caddy `forward_auth`, Traefik `forwardAuth`,
nginx `auth_request` and Envoy's HTTP ext_authz (docs/integrations.md).

The original request is described the way those edges do it:

- credentials in `Authorization` or `x-api-key`, copied from the client's request;
- its method and path in `X-Forwarded-Method` / `X-Forwarded-Uri` (Caddy, Traefik), or
  `X-Original-Method` / `X-Original-URI` (the nginx convention), or, for Envoy's HTTP
  ext_authz, the request's own method with the original path appended to the check path
  (`/authz/check/v1/chat/completions`);
- the body, when the edge forwards it (Envoy `with_request_body`, Traefik `forwardBody`); a body
  Envoy cut at its limit comes with `x-envoy-auth-partial-body: true`;
- else the model in `[edge] model_header` or a `[edge] model_paths` template.

Answer: 200 with the `x-clearance-*` headers to copy upstream, or the refusal as is (its status,
the SDK-shaped body, `Link`). nginx's `auth_request` passes on only 2xx, 401 and 403, so with
`?edge=nginx` every refusal is a 403 carrying the real one in `x-clearance-status`,
`x-clearance-body` (the JSON, ASCII-escaped), `x-clearance-link` and `x-clearance-retry-after`,
which the documented nginx configuration turns back into the client's answer.
"""

from __future__ import annotations

from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

from clearance.decision.edge import EdgeAnswer, EdgeRequest, ModelPaths, ascii_json, check
from clearance.decision.service import DecisionService
from clearance.decision.surfaces import Surface, error_body
from clearance.errors import ClearanceError, InvalidInput
from clearance.net.asgi import read_body, send_bytes

CHECK = "/check"  # under the /authz mount


def forward_auth_app(service: DecisionService) -> ASGIApp:
    paths = ModelPaths(service.state.settings.edge.model_paths)
    limit = service.settings.max_body_bytes

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):  # Starlette's Mount keeps the full path
            path = path[len(root) :]
        headers = dict(scope["headers"])
        nginx = b"edge=nginx" in scope.get("query_string", b"") or (
            headers.get(b"x-clearance-edge") == b"nginx"
        )
        if path != CHECK and not path.startswith(CHECK + "/"):
            body = error_body(Surface.OPENAI, 404, f"no such endpoint: {path}", "not_found")
            await send_bytes(send, 404, body)
            return
        try:
            request = await _original(scope, receive, headers, path, limit)
        except ClearanceError as exc:
            body = error_body(Surface.OPENAI, exc.status, exc.detail, exc.code)
            await _answer(send, EdgeAnswer(status=exc.status, surface=Surface.OPENAI, body=body,
                                           headers=[("content-type", "application/json")]),
                          nginx=nginx)  # fmt: skip
            return
        await _answer(send, await check(service, request, paths), nginx=nginx)

    return app


async def _original(
    scope: Scope, receive: Receive, headers: dict[bytes, bytes], path: str, limit: int
) -> EdgeRequest:
    """The original request, from the headers the edge set (or the path it appended)."""
    method = _header(headers, b"x-forwarded-method", b"x-original-method") or scope["method"]
    uri = _header(headers, b"x-forwarded-uri", b"x-original-uri")
    if not uri:
        uri = path[len(CHECK) :]  # Envoy's HTTP ext_authz appends the original path
    if not uri.startswith("/"):
        raise InvalidInput(
            "the edge did not say which request to check: set X-Forwarded-Uri (Caddy, Traefik),"
            " X-Original-URI (nginx), or append the original path to /authz/check (Envoy)",
            reason="no_original_request",
        )
    original, _, query = uri.partition("?")
    raw = await read_body(receive, headers, limit)
    return EdgeRequest(
        method=method.upper(),
        path=unquote(original),
        headers=headers,
        body=raw or None,
        truncated=headers.get(b"x-envoy-auth-partial-body", b"").lower() == b"true",
        client=str(scope["client"][0]) if scope.get("client") else "",
        query=query.encode("latin-1", "replace"),
    )


def _header(headers: dict[bytes, bytes], *names: bytes) -> str:
    for name in names:
        value = headers.get(name)
        if value:
            return value.decode("latin-1").strip()
    return ""


async def _answer(send: Send, answer: EdgeAnswer, *, nginx: bool) -> None:
    if answer.allowed:
        out = [(k.encode(), v.encode("latin-1")) for k, v in answer.upstream_headers]
        await send_bytes(send, 200, b"", out)
        return
    headers = [(k.encode(), v.encode("latin-1")) for k, v in answer.headers]
    if not nginx:
        await send_bytes(send, answer.status, answer.body, headers)
        return
    # nginx auth_request passes on 2xx, 401 and 403 only: the real refusal rides in headers.
    extra = {k.lower(): v for k, v in answer.headers}
    carried = [
        (b"x-clearance-status", str(answer.status).encode()),
        (b"x-clearance-body", ascii_json(answer.body).encode()),
    ]
    for name in ("link", "retry-after", "clearance-audit-index"):
        if name in extra:
            carried.append((f"x-clearance-{name.removeprefix('clearance-')}".encode(),
                            extra[name].encode("latin-1")))  # fmt: skip
    await send_bytes(send, 403, answer.body, carried)
