"""Small raw-ASGI helpers for the hot path (no framework objects per request)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable

from starlette.types import Receive, Scope, Send

from clearance.errors import InvalidInput, PayloadTooLarge, RequestTimeout
from clearance.gateway import forwarded
from clearance.policy import geo

Headers = list[tuple[bytes, bytes]]
JSON = b"application/json"


async def send_bytes(send: Send, status: int, body: bytes, headers: Headers | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", JSON),
                (b"content-length", str(len(body)).encode()),
                *(headers or ()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


BODY_TIMEOUT = 30.0


async def read_body(
    receive: Receive, headers: dict[bytes, bytes], limit: int, timeout: float = BODY_TIMEOUT
) -> bytes:
    """The whole request body, within `limit` bytes and `timeout` seconds (a slow-body client
    is cut, not waited for)."""
    try:
        async with asyncio.timeout(timeout):
            return await _read_body(receive, headers, limit)
    except TimeoutError as exc:
        raise RequestTimeout(f"request body not received within {timeout:g} s") from exc


async def _read_body(receive: Receive, headers: dict[bytes, bytes], limit: int) -> bytes:
    declared = headers.get(b"content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLarge(f"request body over the {limit}-byte limit")
        except ValueError as exc:
            raise InvalidInput("invalid Content-Length") from exc
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidInput("client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body over the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def api_key(headers: dict[bytes, bytes]) -> str | None:
    auth = headers.get(b"authorization")
    if auth is not None:
        scheme, _, token = auth.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get(b"x-api-key")
    return key.decode("latin-1").strip() if key else None


class ClientLocator:
    """Where a request came from: the socket peer, unless the peer is a trusted proxy.

    From a peer inside `trusted_proxies` the hops its proxies recorded are walked from the
    nearest outwards, skipping trusted proxies; the first address not trusted is the client
    (nginx `real_ip_recursive`, Envoy `xff_num_trusted_hops`). `X-Forwarded-For` is read when
    present, else `Forwarded` (RFC 7239); a client may send either, so a trusted proxy must set
    or strip `X-Forwarded-For` (nearly all do). Where the walk meets a hop that is no address,
    the headers cannot be believed and the peer is the client. uvicorn's own proxy handling
    is off (gateway/serving.py): nothing else rewrites `scope["client"]` or `scope["scheme"]`.
    """

    def __init__(self, trusted: Iterable[str]) -> None:
        self.trusted = tuple(ipaddress.ip_network(t, strict=False) for t in trusted)

    def _is_trusted(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self.trusted)

    def resolve(self, scope: Scope) -> tuple[str, str]:
        """The client's address and the scheme it used ("http", "https"; "ws", "wss")."""
        client = scope.get("client")
        peer = str(client[0]) if client else ""
        scheme = str(scope.get("scheme", "http"))
        if not (self.trusted and self._is_trusted(peer)):
            return peer, scheme
        hop = self._client_hop(scope.get("headers", ()))
        if hop is None:
            return peer, scheme
        if hop.proto and scope["type"] == "websocket":
            scheme = hop.proto.replace("http", "ws")
        elif hop.proto:
            scheme = hop.proto
        return hop.address or peer, scheme

    def _client_hop(self, raw: Iterable[tuple[bytes, bytes]]) -> forwarded.Hop | None:
        """The client's hop (an empty address: the peer itself), or None to believe nothing."""
        lines: dict[bytes, list[str]] = {}
        for name, value in raw:
            if name in _FORWARDING:
                lines.setdefault(name, []).append(value.decode("latin-1"))
        protos = lines.get(b"x-forwarded-proto")
        if b"x-forwarded-for" in lines:
            proto = ", ".join(protos) if protos is not None else None
            hops = forwarded.x_forwarded(", ".join(lines[b"x-forwarded-for"]), proto)
        elif b"forwarded" in lines:
            hops = forwarded.forwarded(", ".join(lines[b"forwarded"]))
        else:  # the proxy named no client, perhaps the scheme it was reached by
            proto = forwarded.scheme(protos[0]) if protos is not None and len(protos) == 1 else ""
            return forwarded.Hop("", proto) if proto else None
        for hop in reversed(hops):
            if not hop.address:
                return None
            if not self._is_trusted(hop.address):
                return hop
        return hops[0] if hops else None  # every hop a trusted proxy: the farthest one

    # `headers` is not needed: every line of a repeated header counts, so they come from the scope.
    def address(self, scope: Scope, headers: dict[bytes, bytes] | None = None) -> str:
        return self.resolve(scope)[0]

    def country(self, scope: Scope, headers: dict[bytes, bytes] | None = None) -> str:
        ip = self.address(scope)
        try:
            return geo.country_of(str(ipaddress.ip_address(ip)))
        except ValueError:
            return ""

    def rewrite(self, scope: Scope) -> Scope:
        """`scope` with the resolved client and scheme, for apps that read them from the scope
        (Starlette's `request.client` and `request.url`)."""
        if not self.trusted or scope["type"] not in ("http", "websocket"):
            return scope
        address, scheme = self.resolve(scope)
        client = scope.get("client")
        if client and client[0] == address and scope.get("scheme") == scheme:
            return scope
        return {**scope, "client": (address, 0), "scheme": scheme}


_FORWARDING = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"forwarded"})
