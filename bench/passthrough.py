"""The bench baseline: a bare pass-through proxy with no checks at all.

    .venv/bin/python bench/passthrough.py --port P --upstream http://127.0.0.1:U [--workers N]

uvicorn (uvloop + httptools) and one shared aiohttp session: every request is forwarded as bytes
to the upstream and its reply streamed back chunk by chunk. What a Python gateway costs before it
does anything; bench/gateway.py measures Clearance beside it.
"""

from __future__ import annotations

import argparse
import os

import aiohttp
import uvicorn
from starlette.types import Receive, Scope, Send

from clearance.net import h1

FORWARD = frozenset({b"content-type", b"authorization", b"x-api-key", b"anthropic-version"})
RETURN = frozenset({"content-type"})


class PassThrough:
    """Forwards with aiohttp (the usual Python client)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await self.forward(scope, bytes(body), send)
        await send({"type": "http.response.body", "body": b""})

    async def forward(self, scope: Scope, body: bytes, send: Send) -> None:
        """The upstream's answer: its head, then each chunk as it arrives."""
        assert self.session is not None
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k in FORWARD}
        async with self.session.request(
            scope["method"], self.upstream + scope["path"], data=body, headers=headers
        ) as resp:
            out = [
                (k.lower().encode(), v.encode())
                for k, v in resp.headers.items()
                if k.lower() in RETURN
            ]
            await send({"type": "http.response.start", "status": resp.status, "headers": out})
            async for chunk in resp.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0)
        self.session = aiohttp.ClientSession(connector=connector, auto_decompress=False)

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


class LeanPassThrough(PassThrough):
    """The same forwarding with the gateway's own upstream client (clearance.net.h1): what the
    client alone gains, apart from every check Clearance makes."""

    client: h1.Client | None = None

    async def forward(self, scope: Scope, body: bytes, send: Send) -> None:
        assert self.client is not None
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k in FORWARD]
        url = self.upstream + scope["path"]
        async with self.client.request(scope["method"], url, body, headers) as resp:
            out = [(k, v) for k, v in resp.headers if k in RETURN_BYTES]
            await send({"type": "http.response.start", "status": resp.status, "headers": out})
            async for chunk in resp.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def start(self) -> None:
        self.client = h1.Client(connect_timeout=10, read_timeout=300)

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()


RETURN_BYTES = frozenset(k.encode() for k in RETURN)
UPSTREAM_ENV = "BENCH_PASSTHROUGH_UPSTREAM"
CLIENT_ENV = "BENCH_PASSTHROUGH_CLIENT"


def from_environment() -> PassThrough:
    if os.environ.get(CLIENT_ENV) == "h1":
        return LeanPassThrough(os.environ[UPSTREAM_ENV])
    return PassThrough(os.environ[UPSTREAM_ENV])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--upstream", required=True, help="upstream root, e.g. http://127.0.0.1:9000"
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--client",
        choices=("aiohttp", "h1"),
        default="aiohttp",
        help="the upstream client: aiohttp (the baseline) or Clearance's own (clearance.net.h1)",
    )
    args = parser.parse_args()
    # Workers are separate processes: they build the app from the environment.
    os.environ[UPSTREAM_ENV] = args.upstream
    os.environ[CLIENT_ENV] = args.client
    uvicorn.run(
        "passthrough:from_environment",
        factory=True,
        app_dir=os.path.dirname(os.path.abspath(__file__)),
        workers=args.workers,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        proxy_headers=False,  # as every server Clearance starts (serving.server_options)
        log_level="warning",
    )


if __name__ == "__main__":
    main()
