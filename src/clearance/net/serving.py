"""The options of every uvicorn server Clearance starts, and `serve_in_thread`: an ASGI app on a
free local port in a background thread (tests, benchmarks, tools)."""

from __future__ import annotations

import asyncio
import contextlib
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


class _ThreadServer(uvicorn.Server):
    """uvicorn's server, stopped on an event rather than on its polls: uvicorn notices
    `should_exit` at its next 0.1 s tick, then sleeps 0.1 s after asking the connections to
    close and polls them every 0.1 s; a test suite that starts and stops two servers per test
    spent about a third of a second per test there. Here `stop()` wakes the main loop at once,
    and the shutdown waits for the connections and tasks on short polls, within the same
    graceful timeout, then shuts the application's lifespan down as uvicorn does."""

    _POLL_SECONDS = 0.005

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):  # on_tick also keeps the Date header current
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await self._wake.wait()

    def stop(self) -> None:
        """From any thread: the server shuts down now."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                loop.call_soon_threadsafe(wake.set)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        state = self.server_state
        try:
            async with asyncio.timeout(self.config.timeout_graceful_shutdown):
                while state.connections or state.tasks:
                    await asyncio.sleep(self._POLL_SECONDS)
                for server in self.servers:
                    await server.wait_closed()
        except TimeoutError:
            for task in state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        await self.lifespan.shutdown()


@contextmanager
def serve_in_thread(
    app: ASGIApp, *, lifespan: str = "on", http: type[asyncio.Protocol] | str = "auto"
) -> Iterator[str]:
    """Yields the base URL (http://127.0.0.1:PORT) once the server accepts connections."""
    # Bind here and hand uvicorn the socket: no window in which another process takes the port.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = _ThreadServer(
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
        server.stop()
        thread.join(timeout=30)
        sock.close()
