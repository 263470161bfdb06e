"""Small raw-ASGI helpers for the hot path (no framework objects per request)."""

from __future__ import annotations

import asyncio

from starlette.types import Receive, Send

from clearance.errors import InvalidInput, PayloadTooLarge, RequestTimeout

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
