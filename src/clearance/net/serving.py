"""The options of every uvicorn server Clearance starts, and `serve_in_thread`: an ASGI app on a
free local port in a background thread (tests, benchmarks, tools)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.types import ASGIApp


def server_options(**options: Any) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.Config` / `uvicorn.run`: `options` over quiet logging,
    with uvicorn's proxy handling off whatever the caller asks.

    uvicorn would otherwise believe X-Forwarded-For and X-Forwarded-Proto from 127.0.0.1 (its
    `forwarded_allow_ips` default) and rewrite the client before the gateway sees it: behind a
    local forwarder that sets no header, a client would choose its own country. Only
    `trusted_proxies` decides, in `ClientLocator` (net/client.py).
    """
    return {"log_level": "warning", "access_log": False, **options, "proxy_headers": False}


@contextmanager
def serve_in_thread(
    app: ASGIApp, *, lifespan: str = "on", http: type[asyncio.Protocol] | str = "auto"
) -> Iterator[str]:
    """Yields the base URL (http://127.0.0.1:PORT) once the server accepts connections."""
    # Bind here and hand uvicorn the socket: no window in which another process takes the port.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            **server_options(
                host="127.0.0.1",
                port=port,
                lifespan=lifespan,
                http=http,
                timeout_graceful_shutdown=5,
            ),
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server failed to start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
