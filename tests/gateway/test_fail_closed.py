"""No byte of a response reaches the client before its decision entry is durable, and a denial
never reaches the upstream. An allowed request's upstream call starts while its entry commits;
if the commit fails, the call is cancelled and the client gets 503 in its SDK's shape. Recovery is
automatic once storage is back."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator

import anthropic
import httpx
import openai
import orjson
import pytest
import sqlalchemy as sa
from starlette.types import Receive, Scope, Send

from clearance.audit.reader import LogReader
from clearance.demo.upstream import DemoUpstream
from clearance.net.serving import serve_in_thread
from clearance.store import connect

from .conftest import Running, audit_writes_blocked

HELLO = [{"role": "user", "content": "hi"}]


@contextlib.contextmanager
def audit_store_broken(gateway: Running) -> Iterator[None]:
    """Take the audit entries table away behind the gateway's back: every append now fails in
    the database itself, exactly as a full disk or a lost server would."""
    engine = connect(gateway.settings.database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit_entries RENAME TO audit_entries_away"))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE audit_entries_away RENAME TO audit_entries"))
        engine.dispose()


@pytest.fixture
def broken_audit_store(gateway: Running) -> Iterator[None]:
    with audit_store_broken(gateway):
        yield


def test_no_record_no_service(
    gateway: Running, demo_upstream: tuple[DemoUpstream, str], broken_audit_store: None
) -> None:
    upstream, _ = demo_upstream
    client = gateway.openai(gateway.key("alice"))
    for model in ("mythos-5", "fable-4"):
        with pytest.raises(openai.APIStatusError) as err:
            client.chat.completions.create(model=model, messages=HELLO, stream=True)
        assert err.value.status_code == 503
        assert err.value.response.json()["error"]["code"] == "audit_unavailable"
        assert "clearance-model-served" not in err.value.response.headers
    with pytest.raises(anthropic.APIStatusError) as aerr:
        gateway.anthropic(gateway.key("alice")).messages.create(
            model="fable-5", max_tokens=8, messages=HELLO
        )
    assert aerr.value.status_code == 503
    assert aerr.value.response.json()["type"] == "error"
    # A denial is answered only once durable, and never reaches the model provider.
    # (The allowed requests above may reach the upstream before their failed commit cancels
    # them, and the upstream may note them late: the denied request is told apart by content.)
    strict = gateway.openai(gateway.strict_key("sven"))
    marker = "denied-while-the-log-is-down"
    with pytest.raises(openai.APIStatusError) as denied:
        strict.chat.completions.create(
            model="mythos-5", messages=[{"role": "user", "content": marker}]
        )
    assert denied.value.status_code == 503
    assert not [r for r in list(upstream.seen) if marker.encode() in r.body]


class HangingUpstream:
    """Takes the request, answers nothing, and notes when the gateway hangs up."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.hung_up = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.asked.set()
        while (await receive())["type"] != "http.disconnect":
            pass
        self.hung_up.set()


def _slow_model(gateway: Running, url: str) -> None:
    gateway.cli("upstreams", "add", "hang", "--kind", "openai", "--base-url", url + "/v1")
    gateway.cli("models", "add", "hang-model", "--upstream", "hang", "--training-compute", "1e20")
    gateway.poll()


def test_a_failed_commit_cancels_the_upstream_call(gateway: Running) -> None:
    """The upstream never answers: a 503 at all proves the gateway did not wait for it."""
    upstream = HangingUpstream()
    with serve_in_thread(upstream, lifespan="off") as url:
        _slow_model(gateway, url)
        with audit_store_broken(gateway), httpx.Client(base_url=gateway.url, timeout=30) as http:
            response = http.post(
                "/v1/chat/completions",
                headers={"authorization": f"Bearer {gateway.key('alice')}"},
                json={"model": "hang-model", "messages": HELLO},
            )
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "audit_unavailable"
        if upstream.asked.is_set():  # the call had started: it was cancelled, not left running
            assert upstream.hung_up.wait(10)


def _upstream_answers(gateway: Running) -> int:
    assert gateway.app is not None
    for metric in gateway.app.metrics.upstream.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count"):
                return int(sample.value)
    return 0


def test_no_byte_before_the_entry_is_durable(gateway: Running) -> None:
    """The upstream's answer is in, the entry is not: the client has received nothing at all,
    not even a status line; once the commit lands, the whole answer follows with its index."""
    host, port = gateway.url.removeprefix("http://").split(":")
    body = orjson.dumps({"model": "fable-4", "messages": HELLO})
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\n"
        f"authorization: Bearer {gateway.key('alice')}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode()
    answered = _upstream_answers(gateway)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        with audit_writes_blocked(gateway.settings):
            sock.sendall(head + body)
            deadline = time.monotonic() + 10
            while _upstream_answers(gateway) == answered:  # the gateway has the upstream's head
                assert time.monotonic() < deadline, "the upstream never answered"
                time.sleep(0.01)
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)  # nothing has been sent to the client
            sock.setblocking(True)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    status, _, rest = reply.partition(b"\r\n")
    assert status == b"HTTP/1.1 200 OK"
    index = int(re.search(rb"clearance-audit-index: (\d+)", rest)[1])  # type: ignore[index]
    engine = connect(gateway.settings.database_url)
    try:
        entry = orjson.loads(LogReader(engine).entry(index))
    finally:
        engine.dispose()
    assert (entry["outcome"], entry["model_served"]) == ("forwarding", "fable-4")
