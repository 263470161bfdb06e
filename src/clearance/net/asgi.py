"""Small raw-ASGI helpers for the hot path (no framework objects per request)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any

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
    reading = _read_body(receive, headers, limit)
    # Most bodies arrive with their headers: the read then ends without waiting, and needs no
    # deadline (arming one costs uvloop several µs a request). Otherwise the rest of the same
    # read runs under it.
    try:
        pending = reading.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    try:
        async with asyncio.timeout(timeout):
            return await _Resumed(reading, pending)
    except TimeoutError as exc:
        raise RequestTimeout(f"request body not received within {timeout:g} s") from exc


class _Resumed:
    """Await the rest of a coroutine that was stepped by hand and is waiting on `pending`: what
    `yield from` does, with the first step already taken. A cancellation (the deadline) is
    thrown into it."""

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: Coroutine[Any, Any, bytes], pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Generator[Any, Any, bytes]:
        coro, pending = self._coro, self._pending
        while True:
            try:
                value = yield pending
            except BaseException as exc:  # noqa: BLE001 - handed to the coroutine, which decides
                try:
                    pending = coro.throw(exc)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
            else:
                try:
                    pending = coro.send(value)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]


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
