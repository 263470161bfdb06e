"""The proxy under upstream faults: timeouts fire on time, a broken stream is never a clean end,
every failure is an audit entry, and a client that leaves cancels the upstream request."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from clearance.app import create_app
from clearance.audit.reader import LogReader
from clearance.config import Settings, load_settings
from clearance.demo.run import seed
from clearance.net.serving import serve_in_thread
from clearance.store import connect

READ_TIMEOUT = 1.0
CHUNK = (
    b'data: {"id":"1","object":"chat.completion.chunk","created":0,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
)


class FaultyUpstream:
    """An OpenAI-style upstream whose misbehaviour is chosen by the requested model's name."""

    def __init__(self) -> None:
        self.open_requests = 0
        self.closed = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        fault = body.split(b'"model":"', 1)[1].split(b'"', 1)[0].decode()
        self.open_requests += 1
        try:
            await self._misbehave(fault, send, receive)
        finally:
            self.open_requests -= 1
            self.closed.set()

    async def _misbehave(self, fault: str, send: Send, receive: Receive) -> None:
        if fault == "stall-headers":
            await _stall(receive)
        if fault == "status-500":
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"internal": "db-7 down"}'})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
        if fault in ("stall-mid", "slow-forever"):
            await _stall(receive)
        if fault == "reset-mid":
            raise RuntimeError("upstream crashed mid-stream")  # uvicorn drops the connection
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


async def _stall(receive: Receive) -> None:
    """Send nothing for 30 s, unless the gateway closes the connection first."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(disconnected(), timeout=30)


@pytest.fixture
def faulty() -> Iterator[tuple[FaultyUpstream, str]]:
    upstream = FaultyUpstream()
    with serve_in_thread(upstream, lifespan="off") as url:
        yield upstream, url


@pytest.fixture
def fast(
    instance: tuple[Settings, Path], faulty: tuple[FaultyUpstream, str], upstream_url: str
) -> Iterator[tuple[str, str, Settings]]:
    _, config = instance
    text = config.read_text().replace(
        "upstream_read_timeout = 300.0", f"upstream_read_timeout = {READ_TIMEOUT}"
    )
    config.write_text(text)
    settings = load_settings(config, environ={})
    engine = connect(settings.database_url)
    keys = seed(engine, settings, upstream_url)
    from clearance.catalog import service as catalog
    from clearance.catalog.classification import classify
    from clearance.catalog.models import UpstreamKind

    with engine.begin() as conn:
        catalog.add_upstream(conn, "faulty", UpstreamKind.OPENAI, faulty[1] + "/v1", None)
        for name in ("stall-headers", "stall-mid", "reset-mid", "status-500", "slow-forever"):
            catalog.add_model(
                conn,
                name,
                upstream="faulty",
                upstream_model=None,
                explicit=None,
                classification=classify(threshold=1e26, training_compute=1e20),
            )
    engine.dispose()
    with serve_in_thread(create_app(settings)) as url:
        yield url, keys["alice@demo.test"], settings


def _post(url: str, key: str, model: str, stream: bool) -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": model, "messages": [], "stream": stream},
        timeout=30,
    )


def _last_outcome(settings: Settings) -> dict[str, Any]:
    """The newest entry once it is a failure outcome (or whatever is newest after 5 s)."""
    engine = connect(settings.database_url)
    try:
        reader = LogReader(engine)
        deadline = time.monotonic() + 5
        while True:
            _, head = reader.sizes()
            record: dict[str, Any] = json.loads(reader.entry(head - 1))
            if record.get("outcome") == "failed" or time.monotonic() > deadline:
                return record
            time.sleep(0.05)
    finally:
        engine.dispose()


def _failed(record: dict[str, Any], reason: str, status: int | None) -> bool:
    """A typed failure entry that follows its decision: nothing parsed out of a string."""
    return (
        record["outcome"] == "failed"
        and record["reason"] == reason
        and record["status"] == status
        and isinstance(record["decision_index"], int)
    )


def _timeout_span(settings: Settings, record: dict[str, Any]) -> float:
    """Seconds between the decision entry (written just before forwarding) and the outcome entry
    (written when the timeout fired), from the gateway's own clock: the client's wall clock also
    counts authentication, connection set-up and a loaded machine's scheduling."""
    index = record["decision_index"]
    engine = connect(settings.database_url)
    try:
        decision = json.loads(LogReader(engine).entry(index))
    finally:
        engine.dispose()
    parse = datetime.fromisoformat
    return (parse(record["time"]) - parse(decision["time"])).total_seconds()


def test_stall_before_headers_times_out_on_time_as_504(fast: tuple[str, str, Settings]) -> None:
    url, key, settings = fast
    started = time.monotonic()
    r = _post(url, key, "stall-headers", stream=False)
    elapsed = time.monotonic() - started
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "upstream_timeout"
    assert elapsed >= READ_TIMEOUT * 0.9  # never early
    outcome = _last_outcome(settings)
    assert _failed(outcome, "upstream_timeout", 504), outcome
    # The configured timeout fired: never early, and not some other timer (the default is 300 s);
    # how late it may be on a loaded machine is a matter for bench/, not for a test.
    assert READ_TIMEOUT * 0.9 <= _timeout_span(settings, outcome) < READ_TIMEOUT * 3


def test_stall_mid_stream_ends_in_an_error_never_a_clean_end(
    fast: tuple[str, str, Settings],
) -> None:
    url, key, settings = fast
    started = time.monotonic()
    received = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream(
            "POST",
            url + "/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "stall-mid", "messages": [], "stream": True},
            timeout=30,
        ) as r,
    ):
        for chunk in r.iter_raw():
            received += chunk
    elapsed = time.monotonic() - started
    assert b'"hi"' in received
    assert b'"error"' in received and b"upstream_timeout" in received
    assert b"[DONE]" not in received
    assert elapsed >= READ_TIMEOUT * 0.9
    outcome = _last_outcome(settings)
    # The 200 and half the stream were sent: the entry has no status of its own.
    assert _failed(outcome, "upstream_timeout", None), outcome
    assert outcome["stream"] is True
    assert READ_TIMEOUT * 0.9 <= _timeout_span(settings, outcome) < READ_TIMEOUT * 3


def test_upstream_reset_mid_stream_is_an_error(fast: tuple[str, str, Settings]) -> None:
    url, key, settings = fast
    received = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream(
            "POST",
            url + "/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "reset-mid", "messages": [], "stream": True},
            timeout=30,
        ) as r,
    ):
        for chunk in r.iter_raw():
            received += chunk
    assert b"[DONE]" not in received and b'"error"' in received
    outcome = _last_outcome(settings)
    assert _failed(outcome, "upstream_error", None), outcome


def test_upstream_5xx_is_a_502_hiding_its_internals(fast: tuple[str, str, Settings]) -> None:
    url, key, settings = fast
    r = _post(url, key, "status-500", stream=False)
    assert r.status_code == 502 and "db-7" not in r.text
    assert r.json()["error"]["type"] == "server_error"
    outcome = _last_outcome(settings)
    assert _failed(outcome, "upstream_5xx", 502), outcome
    assert (outcome["surface"], outcome["endpoint"]) == ("openai", "/v1/chat/completions")


def test_client_disconnect_closes_the_upstream_request(
    fast: tuple[str, str, Settings], faulty: tuple[FaultyUpstream, str]
) -> None:
    url, key, _ = fast
    upstream, _ = faulty
    for _ in range(5):
        upstream.closed.clear()
        with httpx.stream(
            "POST",
            url + "/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "slow-forever", "messages": [], "stream": True},
            timeout=30,
        ) as r:
            next(r.iter_raw())
        # The client hung up mid-stream: the upstream request must end within a second.
        assert upstream.closed.wait(timeout=1.0)
    assert upstream.open_requests == 0
