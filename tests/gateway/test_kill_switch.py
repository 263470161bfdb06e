"""The kill switch stops traffic: a suspension ends streams of that model already in flight."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from clearance.net.serving import serve_in_thread

from .conftest import Running


class StallingUpstream:
    """Sends the first SSE chunk at once, then nothing until the gateway hangs up (or a minute)."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send(
            {
                "type": "http.response.body",
                "more_body": True,
                "body": b'data: {"id":"1","object":"chat.completion.chunk","created":0,'
                b'"model":"slow","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n',
            }
        )
        try:  # nothing more until the gateway hangs up (or a minute passes)
            async with asyncio.timeout(60):
                while (await receive())["type"] != "http.disconnect":
                    pass
        finally:
            self.closed.set()


def test_suspension_ends_in_flight_streams(gateway: Running) -> None:
    upstream = StallingUpstream()
    with serve_in_thread(upstream, lifespan="off") as url:
        gateway.cli("upstreams", "add", "slow", "--kind", "openai", "--base-url", url + "/v1")
        gateway.cli(
            "models", "add", "slow-model", "--upstream", "slow", "--training-compute", "1e20"
        )
        gateway.poll()  # (the gateway's own poller may have been first: either way it is loaded)
        assert gateway.app is not None and "slow-model" in gateway.app.state.catalog.models
        with (
            httpx.Client(base_url=gateway.url, timeout=30) as http,
            http.stream(
                "POST",
                "/v1/chat/completions",
                headers={"authorization": f"Bearer {gateway.key('alice')}"},
                json={"model": "slow-model", "messages": [], "stream": True},
            ) as response,
        ):
            assert response.status_code == 200
            chunks = response.iter_raw()
            assert b"hi" in next(chunks)
            gateway.cli("models", "suspend", "slow-model", "--reason", "incident 9")
            started = time.monotonic()
            with pytest.raises(httpx.RemoteProtocolError):
                for _ in chunks:
                    pass
            # Ended by the gateway's own poller within a second of the suspension committing,
            # long before the upstream's 60 s stall.
            assert time.monotonic() - started < 1.0


class SilentUpstream:
    """Accepts the request and sends nothing until the gateway hangs up."""

    def __init__(self) -> None:
        self.asked = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.asked.set()
        while (await receive())["type"] != "http.disconnect":
            pass


def test_suspension_before_the_upstream_answers_is_a_451(gateway: Running) -> None:
    upstream = SilentUpstream()
    with serve_in_thread(upstream, lifespan="off") as url:
        gateway.cli("upstreams", "add", "mute", "--kind", "openai", "--base-url", url + "/v1")
        gateway.cli(
            "models", "add", "mute-model", "--upstream", "mute", "--training-compute", "1e20"
        )
        gateway.poll()  # (the gateway's own poller may have been first: either way it is loaded)
        assert gateway.app is not None and "mute-model" in gateway.app.state.catalog.models
        with httpx.Client(base_url=gateway.url, timeout=30) as http:
            pending = ThreadPoolExecutor(1).submit(
                http.post,
                "/v1/chat/completions",
                headers={"authorization": f"Bearer {gateway.key('alice')}"},
                json={"model": "mute-model", "messages": [], "stream": True},
            )
            assert upstream.asked.wait(10)
            gateway.cli("models", "suspend", "mute-model", "--reason", "incident 10")
            response = pending.result(timeout=10)
    assert response.status_code == 451
    assert response.json()["error"]["code"] == "model-suspended"
    assert response.headers["link"].endswith('rel="blocked-by"')
