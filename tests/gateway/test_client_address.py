"""The client address has one source of truth, `trusted_proxies`: uvicorn's own proxy handling is
off in every server Clearance starts, and the gateway, started as Clearance starts it, judges a
request by the socket peer unless that peer is a trusted proxy."""

from __future__ import annotations

import ast
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

import clearance
from clearance.app import create_app
from clearance.config import Settings, load_settings
from clearance.demo.run import seed
from clearance.net.client import ClientLocator
from clearance.net.protocol import DeadlineProtocol
from clearance.net.serving import serve_in_thread, server_options
from clearance.store import connect, migrate

from .conftest import Running

HELLO = {"model": "fable-4", "messages": [{"role": "user", "content": "hello"}]}
IRAN, IRAN_V6, US = "2.180.0.1", "2a01:5ec0::1", "8.8.8.8"
PROXIES = ["127.0.0.1/32", "10.0.0.0/8"]


# --- every server Clearance starts -----------------------------------------------------------


def test_server_options_turn_uvicorn_proxy_handling_off() -> None:
    config = uvicorn.Config(
        "clearance.app:app_from_environment",
        **server_options(factory=True, proxy_headers=True, forwarded_allow_ips="*"),
    )
    assert config.proxy_headers is False
    config = uvicorn.Config(Echo(), **server_options(lifespan="off"))
    config.load()
    assert not isinstance(config.loaded_app, ProxyHeadersMiddleware)


def test_every_uvicorn_server_in_clearance_takes_server_options() -> None:
    """`serve`, `demo` and `serve_in_thread` (the tests' servers) alike: a new call site that
    builds its own options would bring uvicorn's X-Forwarded-For default back."""
    calls = []
    for path in sorted(Path(clearance.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "uvicorn"
                and node.func.attr in ("Config", "run")
            ):
                spread = [k.value for k in node.keywords if k.arg is None]
                named = {k.arg for k in node.keywords}
                calls.append((path.name, node.lineno))
                assert len(spread) == 1, f"{path}:{node.lineno} does not use server_options"
                (options,) = spread
                assert isinstance(options, ast.Call)
                assert isinstance(options.func, ast.Name), f"{path}:{node.lineno}"
                assert options.func.id == "server_options", f"{path}:{node.lineno}"
                assert "proxy_headers" not in named, f"{path}:{node.lineno}"
    assert {name for name, _ in calls} >= {"serving.py", "serve.py", "run.py"}  # run: the demo


class Echo:
    """Answers with the client and scheme the app sees, after `locator` (if any) rewrote them."""

    def __init__(self, locator: ClientLocator | None = None) -> None:
        self.locator = locator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        if self.locator is not None:
            scope = self.locator.rewrite(scope)
        body = json.dumps({"client": scope["client"][0], "scheme": scope["scheme"]}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


FORWARDING = {"x-forwarded-for": IRAN, "x-forwarded-proto": "https"}


def test_the_server_itself_rewrites_nothing() -> None:
    # uvicorn would have made this ("2.180.0.1", "https"): the request comes from 127.0.0.1.
    with serve_in_thread(Echo(), lifespan="off") as url:
        seen = httpx.get(url, headers=FORWARDING).json()
    assert seen == {"client": "127.0.0.1", "scheme": "http"}


@pytest.mark.parametrize(
    ("trusted", "seen"),
    [
        ([], {"client": "127.0.0.1", "scheme": "http"}),
        (["192.0.2.0/24"], {"client": "127.0.0.1", "scheme": "http"}),
        (["127.0.0.1/32"], {"client": IRAN, "scheme": "https"}),
    ],
)
def test_scheme_and_client_of_the_web_apps(trusted: list[str], seen: dict[str, str]) -> None:
    """What the portal, audit and operator apps read from the scope (Clearance.__call__)."""
    with serve_in_thread(Echo(ClientLocator(trusted)), lifespan="off") as url:
        assert httpx.get(url, headers=FORWARDING).json() == seen


# --- the gateway, through its real server ----------------------------------------------------


@contextmanager
def gateway_trusting(
    instance: tuple[Settings, Path], upstream_url: str, trusted: list[str]
) -> Iterator[Running]:
    _, config = instance
    text = config.read_text()
    assert "trusted_proxies = []" in text
    config.write_text(
        text.replace("trusted_proxies = []", f"trusted_proxies = {json.dumps(trusted)}")
    )
    settings = load_settings(config, environ={})
    assert list(settings.gateway.trusted_proxies) == trusted
    engine = connect(settings.database_url)
    migrate(engine)
    keys = seed(engine, settings, upstream_url)
    engine.dispose()
    app = create_app(settings)
    with serve_in_thread(app, http=DeadlineProtocol) as url:
        yield Running(url, upstream_url, keys, settings, config, app=app)


@pytest.fixture
def direct(instance: tuple[Settings, Path], upstream_url: str) -> Iterator[Running]:
    with gateway_trusting(instance, upstream_url, []) as running:
        yield running


@pytest.fixture
def proxied(instance: tuple[Settings, Path], upstream_url: str) -> Iterator[Running]:
    with gateway_trusting(instance, upstream_url, PROXIES) as running:
        yield running


def chat(gateway: Running, headers: dict[str, str]) -> httpx.Response:
    """Alice, a verified US citizen, asks for an uncontrolled model: only where the request
    comes from can refuse it (the embargoed-location rule)."""
    auth = {"authorization": f"Bearer {gateway.key('alice')}"}
    return httpx.post(gateway.url + "/v1/chat/completions", json=HELLO, headers=auth | headers)


def recorded_country(gateway: Running, response: httpx.Response) -> str | None:
    index = response.headers["clearance-audit-index"]
    deadline = time.monotonic() + 5
    while (entry := httpx.get(f"{gateway.url}/audit/entries/{index}")).status_code == 404:
        assert time.monotonic() < deadline, f"audit entry {index} never appeared"
        time.sleep(0.02)
    country = entry.json()["ip_country"]
    assert country is None or isinstance(country, str)
    return country


SPOOFS = [
    {"x-forwarded-for": IRAN},
    {"x-forwarded-for": US},
    {"forwarded": f"for={IRAN}"},
    {"forwarded": f'for="[{IRAN_V6}]:4711";proto=https'},
    {"x-forwarded-for": IRAN, "x-forwarded-proto": "https", "forwarded": f"for={IRAN}"},
]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_without_trusted_proxies_the_peer_is_the_client(direct: Running) -> None:
    for headers in SPOOFS:
        response = chat(direct, headers)
        assert response.status_code == 200, (headers, response.text)
        # Judged from 127.0.0.1, which is in no country; never from what the headers claim.
        assert recorded_country(direct, response) is None


BEHIND_PROXIES = [
    ({}, 200, None),
    ({"x-forwarded-for": IRAN}, 451, "IR"),
    ({"x-forwarded-for": US}, 200, "US"),
    # what the client wrote left of its proxy's entry does not count
    ({"x-forwarded-for": f"{US}, {IRAN}"}, 451, "IR"),
    # trusted hops are skipped, wherever the request entered
    ({"x-forwarded-for": f"{IRAN}, 10.1.2.3"}, 451, "IR"),
    ({"x-forwarded-for": f"{IRAN}, {US}"}, 200, "US"),
    ({"forwarded": f'for="[{IRAN_V6}]:4711"'}, 451, "IR"),
    ({"forwarded": f"for={US}, for={IRAN};proto=https"}, 451, "IR"),
    ({"forwarded": f'for="{US}, for={IRAN}'}, 451, "IR"),  # a client's broken quote
    # X-Forwarded-For, set by nearly every proxy, over Forwarded
    ({"x-forwarded-for": IRAN, "forwarded": f"for={US}"}, 451, "IR"),
    # malformed where it matters: the peer, and no 500
    ({"x-forwarded-for": "not-an-address"}, 200, None),
    ({"x-forwarded-for": f"{IRAN}, junk"}, 200, None),
    ({"forwarded": 'for="[2001:db8::1'}, 200, None),
]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_trusted_proxy_names_the_client(proxied: Running) -> None:
    # One gateway for every case: each is a request, not a start-up.
    for headers, status, country in BEHIND_PROXIES:
        response = chat(proxied, headers)
        assert response.status_code == status, (headers, response.text)
        if status == 451:
            assert "embargoed-location" in response.text
        assert recorded_country(proxied, response) == country, headers
