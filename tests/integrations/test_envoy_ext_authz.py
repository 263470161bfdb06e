"""Envoy ext_authz over gRPC (`envoy.service.auth.v3.Authorization/Check`), asked by a real gRPC
client built from the same published protos: the personas get the proxy's answers, every
allowed Check's entry is durable before the answer, every bad or incomplete description is a
precise refusal (never OK), and `clearance serve --ext-authz-port` serves it from each worker."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
import httpx
import orjson
import pytest
import sqlalchemy as sa
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2 as authz
from envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc
from envoy.type.v3 import http_status_pb2
from google.rpc import code_pb2

from clearance.app import create_app
from clearance.audit.tables import audit_entries
from clearance.config import Settings
from clearance.decision.edge import UPSTREAM_HEADERS
from clearance.decision.service import DecisionService
from clearance.demo.run import free_port, seed
from clearance.demo.upstream import demo_upstream_app
from clearance.integrations.envoy import ExtAuthz
from clearance.net.protocol import DeadlineProtocol
from clearance.net.serving import serve_in_thread
from clearance.store import connect, migrate
from tests.gateway.conftest import CLEARANCE, Running

HELLO = {"messages": [{"role": "user", "content": "hello"}]}
OVERWRITE = base_pb2.HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD


@dataclass
class Edge:
    gw: Running
    port: int
    stub: Any  # AuthorizationStub

    def check(self, request: Any) -> Any:
        return self.stub.Check(request, timeout=10)


def with_ext_authz(settings: Settings, port: int) -> Settings:
    return dataclasses.replace(
        settings, edge=dataclasses.replace(settings.edge, ext_authz_port=port)
    )


@pytest.fixture
def edge(instance: tuple[Settings, Path], upstream_url: str) -> Iterator[Edge]:
    """A running Clearance (as the `gateway` fixture) serving ext_authz on a port of its own."""
    settings, config = instance
    settings = with_ext_authz(settings, free_port())
    engine = connect(settings.database_url)
    migrate(engine)
    keys = seed(engine, settings, upstream_url)
    engine.dispose()
    app = create_app(settings)
    port = settings.edge.ext_authz_port
    with (
        serve_in_thread(app, http=DeadlineProtocol) as url,
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        gw = Running(url, upstream_url, keys, settings, config, app=app)
        yield Edge(gw, port, authz_grpc.AuthorizationStub(channel))
        for client in gw.clients:
            client.close()


def request(
    key: str | None = None,
    *,
    model: str | None = "mythos-5",
    path: str = "/v1/chat/completions",
    method: str = "POST",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    raw: bool = True,
    source: str = "127.0.0.1",
) -> Any:
    """A CheckRequest as Envoy's ext_authz filter sends it (`with_request_body`; `raw`:
    `pack_as_bytes`)."""
    check = authz.CheckRequest()
    http = check.attributes.request.http
    http.id = "1"
    http.method = method
    http.path = path
    http.host = "api.example"
    http.scheme = "https"
    http.protocol = "HTTP/1.1"
    sent = {":method": method, ":path": path, ":authority": "api.example"}
    sent["content-type"] = "application/json"
    if key is not None:
        sent["authorization"] = f"Bearer {key}"
    sent.update(headers or {})
    http.headers.update(sent)
    if body is None and model is not None:
        body = orjson.dumps({"model": model, **HELLO})
    if body is not None:
        if raw:
            http.raw_body = body
        else:
            http.body = body.decode()
        http.size = len(body)
    check.attributes.source.address.socket_address.address = source
    check.attributes.source.address.socket_address.port_value = 40123
    return check


def upstream_headers(answer: Any) -> dict[str, str]:
    assert answer.status.code == code_pb2.OK, answer
    assert all(o.append_action == OVERWRITE for o in answer.ok_response.headers)
    return {o.header.key: o.header.value for o in answer.ok_response.headers}


def denied(answer: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The HTTP status, the JSON body and the headers of a refusal."""
    assert answer.status.code in (code_pb2.PERMISSION_DENIED, code_pb2.UNAUTHENTICATED)
    assert not answer.HasField("ok_response")
    refused = answer.denied_response
    headers = {o.header.key: o.header.value for o in refused.headers}
    assert headers["content-type"] == "application/json"
    return refused.status.code, orjson.loads(refused.body), headers


def entry(gw: Running, index: int) -> dict[str, Any]:
    engine = connect(gw.settings.database_url)
    try:
        with engine.connect() as conn:
            raw = conn.execute(
                sa.select(audit_entries.c.entry).where(audit_entries.c.idx == index)
            ).scalar_one()
    finally:
        engine.dispose()
    return cast(dict[str, Any], orjson.loads(raw))


def test_the_personas_get_the_proxys_answers(edge: Edge) -> None:
    gw = edge.gw
    keys = {who: gw.key(who) for who in ("alice", "sven", "dana", "luis", "erik", "nina")}
    keys["sven (strict)"] = gw.strict_key("sven")
    keys["nina (strict)"] = gw.strict_key("nina")
    seen = set()
    for who, key in keys.items():
        for model in ("mythos-5", "fable-5", "fable-4"):
            proxied = httpx.post(
                gw.url + "/v1/chat/completions",
                json={"model": model, **HELLO},
                headers={"authorization": f"Bearer {key}"},
            )
            answer = edge.check(request(key, model=model))
            if proxied.status_code == 200:
                served = upstream_headers(answer)
                assert (
                    served["x-clearance-model-served"] == proxied.headers["clearance-model-served"]
                ), (who, model)
                assert served["x-clearance-decision"] == proxied.headers["clearance-decision"]
                seen.add(served["x-clearance-decision"])
            else:
                status, body, _ = denied(answer)
                assert status == proxied.status_code, (who, model)
                assert body["error"]["code"] == proxied.json()["error"]["code"]
                seen.add(str(status))
    assert seen == {"allow", "fallback", "451"}  # the suite covers all three


def test_an_allowed_check_sets_the_headers_and_its_entry_is_durable(edge: Edge) -> None:
    forged = {
        "x-clearance-subject": "clr_forged",
        "x-clearance-model-served": "mythos-5",
        "x-user-email": "ceo@provider.example",
    }
    answer = edge.check(request(edge.gw.key("alice"), headers=forged))
    headers = upstream_headers(answer)
    assert headers["x-clearance-model-served"] == "mythos-5"
    assert headers["x-clearance-decision"] == "allow"
    assert headers["x-clearance-subject"].startswith("clr_")
    assert headers["x-clearance-subject"] != "clr_forged"  # overwritten, never appended
    assert headers["x-clearance-upstream-model"]
    # Whatever Clearance did not set is removed: the client's key and identity claims; an
    # x-clearance-* header is either set by Clearance (overwriting the client's) or removed.
    removed = set(answer.ok_response.headers_to_remove)
    assert {"authorization", "x-api-key", "x-user-id", "x-user-email"} <= removed
    assert not removed & set(headers)
    assert all(h in headers or h in removed for h in UPSTREAM_HEADERS)
    # Durable before the answer: the entry is in the database when Envoy hears OK.
    logged = entry(edge.gw, int(headers["x-clearance-audit-index"]))
    assert (logged["outcome"], logged["effect"], logged["model_served"]) == (
        "forwarding",
        "allow",
        "mythos-5",
    )

    fallback = upstream_headers(edge.check(request(edge.gw.key("sven"), raw=False)))
    assert fallback["x-clearance-decision"] == "fallback"
    assert fallback["x-clearance-model-served"] == "fable-4"  # for the route to match on
    logged = entry(edge.gw, int(fallback["x-clearance-audit-index"]))
    assert (logged["effect"], logged["model_served"]) == ("fallback", "fable-4")


def test_every_allowed_checks_entry_is_in_the_log_when_the_answer_arrives(edge: Edge) -> None:
    key = edge.gw.key("dana")
    for model in ("mythos-5", "fable-5", "fable-4"):
        headers = upstream_headers(edge.check(request(key, model=model)))
        assert entry(edge.gw, int(headers["x-clearance-audit-index"]))["outcome"] == "forwarding"


def test_a_refusal_is_451_with_the_sdk_body_and_link(edge: Edge) -> None:
    answer = edge.check(request(edge.gw.strict_key("sven")))
    assert answer.status.code == code_pb2.PERMISSION_DENIED
    status, body, headers = denied(answer)
    assert status == 451
    assert body["error"]["code"] == "controlled-foreign-person"
    assert 'rel="blocked-by"' in headers["link"]
    logged = entry(edge.gw, int(headers["clearance-audit-index"]))
    assert (logged["outcome"], logged["status"]) == ("denied", 451)
    # An Anthropic request's refusal comes in Anthropic's shape.
    anthropic = request(
        model=None,
        path="/v1/messages",
        headers={"x-api-key": edge.gw.strict_key("nina"), "anthropic-version": "2023-06-01"},
        body=orjson.dumps({"model": "fable-5", "max_tokens": 10, **HELLO}),
    )
    status, body, _ = denied(edge.check(anthropic))
    assert status == 451 and body["type"] == "error"
    assert "Verify your identity" in body["error"]["message"]


def test_451_is_an_open_enum_value_that_survives_the_wire() -> None:
    """envoy.type.v3.StatusCode has no member for 451; proto3 enums are open, so the number
    is set, serialised and read back as is (Envoy reads it the same way: a plain integer)."""
    with pytest.raises(ValueError):
        http_status_pb2.StatusCode.Name(451)
    assert http_status_pb2.StatusCode.Name(403) == "Forbidden"
    response = authz.CheckResponse()
    response.denied_response.status.code = 451
    wire = response.SerializeToString()
    assert authz.CheckResponse.FromString(wire).denied_response.status.code == 451
    # HttpStatus{code: 451} is the varint 451 (0xc3 0x03) in field 1.
    assert b"\x08\xc3\x03" in wire


@pytest.mark.parametrize(
    ("who", "kwargs", "grpc_code", "status", "code"),
    [
        (None, {}, code_pb2.UNAUTHENTICATED, 401, "invalid_api_key"),  # no credential
        ("alice", {"model": "gpt-unknown"}, code_pb2.PERMISSION_DENIED, 404, "not_found"),
        ("alice", {"body": b"{not json"}, code_pb2.PERMISSION_DENIED, 400, None),
        ("alice", {"body": b"[1, 2]"}, code_pb2.PERMISSION_DENIED, 400, None),
        (  # a body Envoy cut at max_request_bytes (allow_partial_message)
            "alice",
            {
                "body": b'{"model": "mythos-5", "messa',
                "headers": {"x-envoy-auth-partial-body": "true"},
            },
            code_pb2.PERMISSION_DENIED,
            413,
            None,
        ),
        ("alice", {"model": None}, code_pb2.PERMISSION_DENIED, 400, None),  # no model anywhere
        ("alice", {"method": "GET"}, code_pb2.PERMISSION_DENIED, 400, None),
        ("alice", {"path": "/v1/unknown"}, code_pb2.PERMISSION_DENIED, 404, None),
        (  # a model header that disagrees with the body
            "alice",
            {"headers": {"x-clearance-model": "fable-4"}},
            code_pb2.PERMISSION_DENIED,
            400,
            None,
        ),
    ],
)
def test_a_bad_check_is_a_precise_refusal(
    edge: Edge,
    who: str | None,
    kwargs: dict[str, Any],
    grpc_code: int,
    status: int,
    code: str | None,
) -> None:
    key = edge.gw.key(who) if who is not None else None
    answer = edge.check(request(key, **kwargs))
    assert answer.status.code == grpc_code
    got, body, _ = denied(answer)
    assert got == status, body
    assert "error" in body
    if code is not None:
        assert code in {body["error"].get("code"), body["error"].get("type")}


def test_a_check_describing_no_request_is_refused_never_allowed(edge: Edge) -> None:
    pathless = request(edge.gw.key("alice"), path="")
    del pathless.attributes.request.http.headers[":path"]
    for check, said in ((authz.CheckRequest(), "describes no HTTP request"), (pathless, "path")):
        answer = edge.check(check)
        assert answer.status.code == code_pb2.PERMISSION_DENIED
        status, body, _ = denied(answer)
        assert status == 400
        assert said in body["error"]["message"]


def test_without_a_body_the_model_comes_from_the_edges_header(edge: Edge) -> None:
    """`with_request_body` off: the edge sets `x-clearance-model` itself; `header_map` is what
    Envoy sends with `encode_raw_headers`."""
    check = request(edge.gw.key("alice"), model=None)
    check.attributes.request.http.headers.clear()
    for name, value in (
        (":path", "/v1/chat/completions"),
        ("authorization", f"Bearer {edge.gw.key('alice')}"),
        ("x-clearance-model", "fable-5"),
    ):
        header = check.attributes.request.http.header_map.headers.add()
        header.key = name
        header.raw_value = value.encode()
    assert upstream_headers(edge.check(check))["x-clearance-model-served"] == "fable-5"


def test_the_client_behind_a_trusted_proxy_is_the_forwarded_one() -> None:
    settings = Settings()
    settings = dataclasses.replace(
        settings, gateway=dataclasses.replace(settings.gateway, trusted_proxies=("10.0.0.0/8",))
    )
    service = cast(DecisionService, None)  # `original` only reads the request
    servicer = ExtAuthz(service, settings)
    forwarded = {"x-forwarded-for": "198.51.100.7, 10.0.0.9"}
    assert servicer.original(request(source="10.1.2.3", headers=forwarded)).client == (
        "198.51.100.7"
    )
    # From a peer not trusted, its own address, whatever it claims.
    assert servicer.original(request(source="203.0.113.5", headers=forwarded)).client == (
        "203.0.113.5"
    )
    assert servicer.original(request(path="/v1/chat/completions?x=1")).query == b"x=1"


def _serve(
    config: Path, port: int, ext_authz: int, workers: int, *, capture: bool = False
) -> subprocess.Popen[bytes]:
    command = [CLEARANCE, "serve", "--config", str(config), "--port", str(port)]
    command += ["--workers", str(workers), "--ext-authz-port", str(ext_authz)]
    return subprocess.Popen(
        command,
        env={**os.environ, "CLEARANCE_CONFIG": str(config)},
        stderr=subprocess.PIPE if capture else None,
    )


def test_clearance_serve_serves_ext_authz_from_every_worker(
    instance: tuple[Settings, Path],
) -> None:
    settings, config = instance
    with serve_in_thread(demo_upstream_app(chunk_delay=0.0), lifespan="off") as upstream:
        engine = connect(settings.database_url)
        key = seed(engine, settings, upstream)["alice@demo.test"]
        engine.dispose()
        ext_authz = free_port()
        server = _serve(config, free_port(), ext_authz, workers=2)
        try:
            deadline = time.monotonic() + 60
            while True:  # both workers bind the port (SO_REUSEPORT); either may answer first
                try:
                    with grpc.insecure_channel(f"127.0.0.1:{ext_authz}") as channel:
                        stub = authz_grpc.AuthorizationStub(channel)
                        first = stub.Check(request(key), timeout=5)
                    break
                except grpc.RpcError:
                    assert server.poll() is None, "clearance serve exited"
                    assert time.monotonic() < deadline, "ext_authz did not start"
                    time.sleep(0.2)
            assert upstream_headers(first)["x-clearance-model-served"] == "mythos-5"
            # New connections each time: the kernel spreads them over both workers.
            indices = set()
            for _ in range(10):
                with grpc.insecure_channel(f"127.0.0.1:{ext_authz}") as channel:
                    answer = authz_grpc.AuthorizationStub(channel).Check(request(key), timeout=5)
                indices.add(upstream_headers(answer)["x-clearance-audit-index"])
            assert len(indices) == 10  # one entry each, gap-free in one log

            # A second `serve` on the same ext_authz port must not share it silently.
            second = _serve(config, free_port(), ext_authz, workers=1, capture=True)
            _, err = second.communicate(timeout=60)
            assert second.returncode != 0
            assert f"--ext-authz-port {ext_authz}" in err.decode()
        finally:
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=60) == 0
        # Stopped cleanly: the port is free again.
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", ext_authz))
