"""HTTP forward-auth (`/authz/check`) as Caddy, Traefik, nginx and Envoy's HTTP ext_authz call it:
the personas get the answers the proxy gives them, each decision durable before the answer, and
every malformed or incomplete description of a request is a precise refusal, never an allow."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from clearance.audit.tables import audit_entries
from clearance.store import connect
from tests.gateway.conftest import Running

HELLO = {"messages": [{"role": "user", "content": "hello"}]}


def _caddy(gw: Running, who: str | None, model: str, **extra: str) -> httpx.Response:
    """Caddy forward_auth / Traefik forwardAuth: a GET with the original's method and URI."""
    headers = {
        "x-forwarded-method": "POST",
        "x-forwarded-uri": "/v1/chat/completions",
        "x-clearance-model": model,
        **extra,
    }
    if who is not None:
        headers["authorization"] = f"Bearer {gw.key(who)}"
    return httpx.get(gw.url + "/authz/check", headers=headers)


def _entry(gw: Running, index: int) -> dict[str, Any]:
    engine = connect(gw.settings.database_url)
    try:
        with engine.connect() as conn:
            raw = conn.execute(
                sa.select(audit_entries.c.entry).where(audit_entries.c.idx == index)
            ).scalar_one()
    finally:
        engine.dispose()
    return orjson.loads(raw)  # type: ignore[no-any-return]


def test_the_personas_get_the_proxys_answers(gateway: Running) -> None:
    allowed = _caddy(gateway, "alice", "mythos-5")
    assert allowed.status_code == 200 and allowed.content == b""
    assert allowed.headers["x-clearance-model-served"] == "mythos-5"
    assert allowed.headers["x-clearance-decision"] == "allow"
    assert allowed.headers["x-clearance-subject"].startswith("clr_")
    assert allowed.headers["x-clearance-upstream-model"]
    # Durable before the answer: the entry is in the database when the edge hears "allow".
    entry = _entry(gateway, int(allowed.headers["x-clearance-audit-index"]))
    assert (entry["outcome"], entry["effect"], entry["model_served"]) == (
        "forwarding",
        "allow",
        "mythos-5",
    )

    fallback = _caddy(gateway, "sven", "mythos-5")
    assert fallback.status_code == 200
    assert fallback.headers["x-clearance-decision"] == "fallback"
    assert fallback.headers["x-clearance-model-served"] != "mythos-5"

    strict = httpx.get(
        gateway.url + "/authz/check",
        headers={
            "x-forwarded-method": "POST",
            "x-forwarded-uri": "/v1/chat/completions",
            "x-clearance-model": "mythos-5",
            "authorization": f"Bearer {gateway.strict_key('sven')}",
        },
    )
    assert strict.status_code == 451
    assert strict.json()["error"]["code"] == "controlled-foreign-person"
    assert 'rel="blocked-by"' in strict.headers["link"]
    denied = _entry(gateway, int(strict.headers["clearance-audit-index"]))
    assert (denied["outcome"], denied["status"]) == ("denied", 451)


def test_envoys_http_ext_authz_appends_the_path_and_sends_the_body(gateway: Running) -> None:
    body = orjson.dumps({"model": "mythos-5", "max_tokens": 10, **HELLO})
    answer = httpx.post(
        gateway.url + "/authz/check/v1/messages",
        content=body,
        headers={"x-api-key": gateway.key("alice"), "anthropic-version": "2023-06-01"},
    )
    assert answer.status_code == 200
    assert answer.headers["x-clearance-model-served"] == "mythos-5"
    # An Anthropic request's refusal is in Anthropic's shape.
    refused = httpx.post(
        gateway.url + "/authz/check/v1/messages",
        content=body,
        headers={"x-api-key": gateway.strict_key("sven"), "anthropic-version": "2023-06-01"},
    )
    assert refused.status_code == 451 and refused.json()["type"] == "error"


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({}, None, 401, "invalid_api_key"),  # no credential
        ({"x-clearance-model": ""}, None, 400, "invalid_request"),  # no model anywhere
        ({"x-clearance-model": "gpt-unknown"}, None, 404, "not_found"),
        ({"x-envoy-auth-partial-body": "true"}, b'{"model": "mythos-5", "messa', 413, None),
        ({"x-clearance-model": "fable-4"}, orjson.dumps({"model": "mythos-5", **HELLO}), 400, None),
        ({}, b"{not json", 400, None),
        ({"x-forwarded-method": "GET"}, None, 400, None),
        ({"x-forwarded-uri": "/v1/unknown"}, None, 404, None),
        ({"x-forwarded-uri": ""}, None, 400, None),  # the edge forgot to say what to check
    ],
)
def test_a_bad_description_is_a_precise_refusal(
    gateway: Running, headers: dict[str, str], body: bytes | None, status: int, code: str | None
) -> None:
    sent = {
        "x-forwarded-method": "POST",
        "x-forwarded-uri": "/v1/chat/completions",
        "x-clearance-model": "mythos-5",
        **headers,
    }
    if status != 401:
        sent["authorization"] = f"Bearer {gateway.key('alice')}"
    if body is not None and "x-clearance-model" not in headers:
        sent.pop("x-clearance-model")
    answer = httpx.post(gateway.url + "/authz/check", headers=sent, content=body or b"")
    assert answer.status_code == status, answer.text
    assert "error" in answer.json()
    if code is not None and status != 401:
        assert answer.json()["error"]["code"] in {code, "invalid_request_error", "not_found"}


def test_nginx_gets_every_refusal_as_a_403_carrying_the_real_one(gateway: Running) -> None:
    headers = {
        "x-original-method": "POST",
        "x-original-uri": "/v1/chat/completions",
        "x-clearance-model": "mythos-5",
        "authorization": f"Bearer {gateway.strict_key('sven')}",
    }
    answer = httpx.get(gateway.url + "/authz/check?edge=nginx", headers=headers)
    assert answer.status_code == 403
    assert answer.headers["x-clearance-status"] == "451"
    carried = orjson.loads(answer.headers["x-clearance-body"])
    assert carried["error"]["code"] == "controlled-foreign-person"
    assert 'rel="blocked-by"' in answer.headers["x-clearance-link"]
    assert answer.headers["x-clearance-audit-index"].isdigit()
    headers["authorization"] = f"Bearer {gateway.key('alice')}"
    assert httpx.get(gateway.url + "/authz/check?edge=nginx", headers=headers).status_code == 200
