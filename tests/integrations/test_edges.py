"""Clearance as the decision point of a real edge: nginx (auth_request, njs from Debian) and Caddy
(forward_auth) in front of the demo upstream, with the configurations docs/integrations.md shows
(docs/edges/), and the official openai and anthropic SDKs as the clients.

nginx sends Clearance the whole body and gives the upstream the model Clearance chose; Caddy,
which cannot read a body in forward_auth, routes by a path naming the model (Azure-style
deployments) and rewrites it to the served model. Through both: the personas get the proxy's
answers, each answer has its audit entry, the client's own x-clearance-* headers and key never
reach the upstream, a client naming one model in a header and another in the body never gets a
controlled model, and with Clearance down the client gets a 5xx, never the upstream's answer.

The binaries come from Debian (scripts/system-deps). Without them these tests skip, unless
CLEARANCE_REQUIRE_EDGES=1 (CI), when they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
import sqlalchemy as sa

from clearance.audit.tables import audit_entries
from clearance.config import Settings, load_settings
from clearance.demo.run import free_port
from clearance.demo.upstream import DemoUpstream
from clearance.store import connect
from tests.gateway.conftest import Running, make_instance

EDGES = Path(__file__).resolve().parents[2] / "docs" / "edges"
REQUIRE_EDGES = os.environ.get("CLEARANCE_REQUIRE_EDGES") == "1"
NJS = Path("/usr/lib/nginx/modules/ngx_http_js_module.so")
UPSTREAM_CREDENTIAL = "Bearer UPSTREAM-CREDENTIAL"
HELLO: Any = [{"role": "user", "content": "hello"}]
# The addresses the shipped configurations name, replaced by this run's.
CLEARANCE_AT, UPSTREAM_AT, EDGE_AT = "127.0.0.1:8080", "127.0.0.1:9000", "127.0.0.1:8000"
EDGE_TABLE = """
[edge]
model_paths = [
    "/openai/deployments/{model}/chat/completions",
    "/anthropic/models/{model}/v1/messages",
]
"""


def _binary(name: str, *needs: Path) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/usr/local/bin")
    missing = [str(p) for p in needs if not p.exists()]
    if found is None or missing:
        reason = (
            f"{name} is not installed ({', '.join(missing) or name} missing;"
            " scripts/system-deps installs it)"
        )
        if REQUIRE_EDGES:
            pytest.fail(f"CLEARANCE_REQUIRE_EDGES=1 but {reason}")
        pytest.skip(reason)
    return found


def _render(template: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert old in template, f"the shipped configuration no longer names {old}"
        template = template.replace(old, new)
    return template


def _ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll until the edge answers (its catch-all answers 404)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url + "/ready", timeout=2)
            return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            text = log.read_text() if log.exists() else ""
            raise AssertionError(f"{url} did not start:\n{text[-3000:]}")
        time.sleep(0.02)


@contextlib.contextmanager
def _running(
    command: list[str], url: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        _ready(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def nginx(directory: Path, clearance: str, upstream: str) -> Iterator[str]:
    """nginx with docs/edges/clearance-nginx.conf, its own prefix and port, in the foreground."""
    binary = _binary("nginx", NJS)
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    script = directory / "clearance.js"
    script.write_text((EDGES / "clearance.js").read_text())
    site = _render(
        (EDGES / "clearance-nginx.conf").read_text(),
        {
            "/etc/nginx/clearance.js": str(script),
            CLEARANCE_AT: clearance,
            UPSTREAM_AT: upstream,
            EDGE_AT: f"127.0.0.1:{port}",
        },
    )
    (directory / "site.conf").write_text(site)
    temp = "\n".join(
        f"    {kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (directory / "nginx.conf").write_text(
        f"load_module {NJS};\n"
        f"pid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} notice;\n"
        "daemon off;\nmaster_process off;\nworker_processes 1;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n    access_log off;\n{temp}\n    include {directory / 'site.conf'};\n}}\n"
    )
    command = [binary, "-p", str(directory), "-e", str(directory / "error.log"),
               "-c", str(directory / "nginx.conf")]  # fmt: skip
    with _running(command, f"http://127.0.0.1:{port}", directory / "error.log") as url:
        yield url


@contextlib.contextmanager
def caddy(directory: Path, clearance: str, upstream: str) -> Iterator[str]:
    """Caddy with docs/edges/Caddyfile on its own port, its state under `directory`."""
    binary = _binary("caddy")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "Caddyfile"
    config.write_text(
        _render(
            (EDGES / "Caddyfile").read_text(),
            {CLEARANCE_AT: clearance, UPSTREAM_AT: upstream, EDGE_AT: f"127.0.0.1:{port}"},
        )
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(directory),
        "XDG_DATA_HOME": str(directory / "data"),
        "XDG_CONFIG_HOME": str(directory / "config"),
    }
    command = [binary, "run", "--config", str(config), "--adapter", "caddyfile"]
    with _running(command, f"http://127.0.0.1:{port}", directory / "caddy.log", env) as url:
        yield url


EDGE_RUNNERS = {"nginx": nginx, "caddy": caddy}


@dataclass
class Edge:
    kind: str
    url: str
    clients: list[openai.OpenAI | anthropic.Anthropic]
    log: Path

    def explain(self, response: httpx.Response, upstream: DemoUpstream) -> str:
        """What a client got, what the upstream last saw and the edge's log, for a failure."""
        seen = upstream.seen[-1]
        log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        return (
            f"HTTP {response.status_code} {dict(response.headers)}; the upstream last saw"
            f" {seen.method} {seen.path} {seen.body[:300]!r}; the {self.kind} log:\n{log}"
        )

    def openai(self, key: str, model: str) -> openai.OpenAI:
        """nginx: the standard base URL; Caddy: the deployment's (the path names the model)."""
        base = (
            self.url + "/v1" if self.kind == "nginx" else f"{self.url}/openai/deployments/{model}"
        )
        client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
        self.clients.append(client)
        return client

    def anthropic(self, key: str, model: str) -> anthropic.Anthropic:
        base = self.url if self.kind == "nginx" else f"{self.url}/anthropic/models/{model}"
        client = anthropic.Anthropic(base_url=base, api_key=key, max_retries=0)
        self.clients.append(client)
        return client

    def chat_url(self, model: str) -> str:
        if self.kind == "nginx":
            return self.url + "/v1/chat/completions"
        return f"{self.url}/openai/deployments/{model}/chat/completions"


def _log(directory: Path, kind: str) -> Path:
    return directory / ("error.log" if kind == "nginx" else "caddy.log")


def _address(url: str) -> str:
    return url.removeprefix("http://").rstrip("/")


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> tuple[Settings, Path]:
    """An instance whose [edge] model_paths name the deployment paths Caddy routes by."""
    _, config = make_instance(db_url, tmp_path / "instance")
    config.write_text(config.read_text() + EDGE_TABLE)
    return load_settings(config, environ={}), config


@pytest.fixture(params=sorted(EDGE_RUNNERS))
def edge(request: pytest.FixtureRequest, gateway: Running, tmp_path: Path) -> Iterator[Edge]:
    run = EDGE_RUNNERS[request.param]
    with run(
        tmp_path / request.param, _address(gateway.url), _address(gateway.upstream_url)
    ) as url:
        running = Edge(request.param, url, [], _log(tmp_path / request.param, request.param))
        yield running
        for client in running.clients:
            client.close()


def _entry(gw: Running, index: str) -> dict[str, Any]:
    engine = connect(gw.settings.database_url)
    try:
        with engine.connect() as conn:
            raw = conn.execute(
                sa.select(audit_entries.c.entry).where(audit_entries.c.idx == int(index))
            ).scalar_one()
    finally:
        engine.dispose()
    return orjson.loads(raw)  # type: ignore[no-any-return]


def _last_seen(upstream: DemoUpstream) -> tuple[dict[str, str], dict[str, Any]]:
    seen = upstream.seen[-1]
    return seen.headers, orjson.loads(seen.body)


def test_the_personas_get_the_proxys_answers_through_the_edge(
    edge: Edge, gateway: Running, demo_upstream: tuple[DemoUpstream, str]
) -> None:
    upstream = demo_upstream[0]
    alice, sven, strict = gateway.key("alice"), gateway.key("sven"), gateway.strict_key("sven")

    # alice, a verified US citizen, gets the controlled model; its entry is durable.
    raw = edge.openai(alice, "mythos-5").chat.completions.with_raw_response.create(
        model="mythos-5", messages=HELLO, extra_headers={"x-clearance-subject": "forged"}
    )
    assert raw.parse().model == "mythos-5"
    entry = _entry(gateway, raw.headers["clearance-audit-index"])
    assert (entry["effect"], entry["model_served"]) == ("allow", "mythos-5")
    # What the upstream got: Clearance's headers, the provider's credential, no client key.
    headers, body = _last_seen(upstream)
    assert headers["authorization"] == UPSTREAM_CREDENTIAL
    assert headers["x-clearance-subject"].startswith("clr_")
    assert headers["x-clearance-audit-index"] == raw.headers["clearance-audit-index"]
    assert alice not in str(upstream.seen[-1])
    assert edge.kind == "caddy" or body["model"] == "mythos-5"

    # sven, a Swedish national, is served the fallback, the upstream asked for it.
    reply = edge.openai(sven, "mythos-5").chat.completions.with_raw_response.create(
        model="mythos-5", messages=HELLO
    )
    entry = _entry(gateway, reply.headers["clearance-audit-index"])
    assert (entry["effect"], entry["model_requested"]) == ("fallback", "mythos-5")
    served = entry["model_served"]  # the first of mythos-5's fallbacks sven may have
    assert served in {"fable-5", "fable-4"}
    assert reply.parse().model == served
    assert upstream.seen[-1].headers["x-clearance-model-served"] == served
    # A stream passes through the edge, with the fallback's model.
    with edge.openai(sven, "mythos-5").chat.completions.with_streaming_response.create(
        model="mythos-5", messages=HELLO, stream=True
    ) as streamed:
        chunks = list(streamed.parse())
    # CI once saw this stream end with no chunk (caddy-postgres, not reproduced in 25 runs
    # here): if it recurs, the failure shows what the client and the upstream got.
    assert chunks, edge.explain(streamed.http_response, upstream)
    assert {c.model for c in chunks} == {served}

    # sven's key without fallback: the SDK's 451, with the Link to the rule and an entry.
    with pytest.raises(openai.APIStatusError) as refused:
        edge.openai(strict, "mythos-5").chat.completions.create(model="mythos-5", messages=HELLO)
    assert refused.value.status_code == 451
    assert refused.value.code == "controlled-foreign-person"
    assert 'rel="blocked-by"' in refused.value.response.headers["link"]
    entry = _entry(gateway, refused.value.response.headers["clearance-audit-index"])
    assert (entry["outcome"], entry["status"]) == ("denied", 451)

    # The same through the anthropic SDK.
    message = edge.anthropic(alice, "mythos-5").messages.with_raw_response.create(
        model="mythos-5", max_tokens=20, messages=HELLO
    )
    assert message.parse().model == "mythos-5"
    assert _entry(gateway, message.headers["clearance-audit-index"])["effect"] == "allow"
    fallback = edge.anthropic(sven, "mythos-5").messages.create(
        model="mythos-5", max_tokens=20, messages=HELLO
    )
    assert fallback.model == served
    assert "x-api-key" not in upstream.seen[-1].headers
    with pytest.raises(anthropic.APIStatusError) as denied:
        edge.anthropic(strict, "mythos-5").messages.create(
            model="mythos-5", max_tokens=20, messages=HELLO
        )
    assert denied.value.status_code == 451
    assert denied.value.body["type"] == "error"  # type: ignore[index]
    assert 'rel="blocked-by"' in denied.value.response.headers["link"]
    assert denied.value.response.headers["clearance-audit-index"].isdigit()

    # No key: 401 in the API's shape, and the upstream saw nothing.
    before = len(upstream.seen)
    answer = httpx.post(edge.chat_url("mythos-5"), json={"model": "mythos-5", "messages": HELLO})
    assert answer.status_code == 401, answer.text
    assert "error" in answer.json()
    assert len(upstream.seen) == before


def test_a_client_naming_two_models_never_gets_the_controlled_one(
    edge: Edge, gateway: Running, demo_upstream: tuple[DemoUpstream, str]
) -> None:
    """The client's model header is dropped and the upstream serves what Clearance decided:
    nginx checks the body and rewrites its model; Caddy checks the path, the upstream serves the
    path's model and ignores the body's."""
    upstream = demo_upstream[0]
    sven, strict = gateway.key("sven"), gateway.strict_key("sven")
    forged = {
        "x-clearance-model": "fable-4",  # uncontrolled: what the client wants checked
        "x-clearance-model-served": "mythos-5",
        "x-clearance-upstream-model": "mythos-5",
        "x-clearance-decision": "allow",
    }
    # A header naming the uncontrolled model, the request (path or body) the controlled one.
    reply = edge.openai(sven, "mythos-5").chat.completions.create(
        model="mythos-5", messages=HELLO, extra_headers=forged
    )
    assert reply.model in {"fable-5", "fable-4"}  # a fallback for mythos-5: it was checked
    with pytest.raises(openai.APIStatusError) as refused:
        edge.openai(strict, "mythos-5").chat.completions.create(
            model="mythos-5", messages=HELLO, extra_headers=forged
        )
    assert refused.value.status_code == 451
    # The path (Caddy) names the uncontrolled model, the body the controlled one: nginx checks
    # the body (451); behind Caddy the upstream serves the path's model, never the body's.
    before = len(upstream.seen)
    client = edge.openai(strict, "fable-4")
    if edge.kind == "nginx":
        with pytest.raises(openai.APIStatusError) as refused:
            client.chat.completions.create(model="mythos-5", messages=HELLO, extra_headers=forged)
        assert refused.value.status_code == 451
        assert len(upstream.seen) == before
        return
    reply = client.chat.completions.create(model="mythos-5", messages=HELLO, extra_headers=forged)
    assert reply.model == "fable-4"
    seen = upstream.seen[-1]
    assert seen.headers["x-clearance-model-served"] == "fable-4"
    assert seen.path == "/openai/deployments/fable-4/chat/completions"


@pytest.mark.parametrize("kind", sorted(EDGE_RUNNERS))
def test_clearance_down_is_a_5xx_never_the_upstreams_answer(
    kind: str, demo_upstream: tuple[DemoUpstream, str], tmp_path: Path
) -> None:
    upstream, upstream_url = demo_upstream
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    with EDGE_RUNNERS[kind](tmp_path / kind, dead, _address(upstream_url)) as url:
        running = Edge(kind, url, [], _log(tmp_path / kind, kind))
        for attempt in range(2):
            answer = httpx.post(
                running.chat_url("mythos-5"),
                json={"model": "mythos-5", "messages": HELLO},
                headers={"authorization": "Bearer clr_whoever", "x-clearance-decision": "allow"},
            )
            assert 500 <= answer.status_code <= 599, (attempt, answer.status_code, answer.text)
            assert "Clearance demo upstream" not in answer.text
    assert not upstream.seen


def test_the_documented_configurations_are_the_tested_ones() -> None:
    """docs/integrations.md shows docs/edges/ as they are, so what it shows is what runs here."""
    page = (EDGES.parent / "integrations.md").read_text()
    for name in ("clearance.js", "clearance-nginx.conf", "Caddyfile"):
        assert (EDGES / name).read_text() in page, f"docs/integrations.md differs from {name}"
