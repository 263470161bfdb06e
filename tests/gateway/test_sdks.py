"""The official SDKs, unchanged but for base_url and api_key, against a running gateway."""

from __future__ import annotations

import time

import anthropic
import httpx
import openai
import pytest

from .conftest import Running

HELLO = [{"role": "user", "content": "Hello there"}]


def oai(gw: Running, who: str) -> openai.OpenAI:
    return gw.openai(gw.key(who))


def ant(gw: Running, who: str) -> anthropic.Anthropic:
    return gw.anthropic(gw.key(who))


def test_us_citizen_gets_the_controlled_model(gateway: Running) -> None:
    raw = oai(gateway, "alice").chat.completions.with_raw_response.create(
        model="mythos-5", messages=HELLO
    )
    reply = raw.parse()
    assert reply.model == "mythos-5"
    assert "demo" in (reply.choices[0].message.content or "").lower()
    assert raw.headers["clearance-model-served"] == "mythos-5"
    assert int(raw.headers["clearance-audit-index"]) >= 0


def test_foreign_national_is_served_the_fallback_named_as_such(gateway: Running) -> None:
    raw = oai(gateway, "sven").chat.completions.with_raw_response.create(
        model="mythos-5", messages=HELLO
    )
    assert raw.parse().model == "fable-4"
    assert raw.headers["clearance-model-served"] == "fable-4"
    assert raw.headers["clearance-decision"] == "fallback"


def test_licensed_engineer_gets_fable5_but_not_mythos5(gateway: Running) -> None:
    client = oai(gateway, "erik")
    assert client.chat.completions.create(model="fable-5", messages=HELLO).model == "fable-5"
    assert client.chat.completions.create(model="mythos-5", messages=HELLO).model == "fable-5"


def test_denial_is_451_with_link_in_openai_shape_even_for_streams(gateway: Running) -> None:
    client = gateway.openai(gateway.strict_key("sven"))
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as err:
            client.chat.completions.create(model="mythos-5", messages=HELLO, stream=stream)
        response = err.value.response
        assert response.status_code == 451
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["link"] == '<http://127.0.0.1:8080/portal>; rel="blocked-by"'
        assert int(response.headers["clearance-audit-index"]) >= 0
        body = response.json()["error"]
        assert body["code"] == "controlled-foreign-person"
        assert "licence" in body["message"] and "controlled-foreign-person" in body["message"]


def test_uncontrolled_model_serves_an_unverified_user(gateway: Running) -> None:
    reply = oai(gateway, "nina").chat.completions.create(model="fable-4", messages=HELLO)
    assert reply.model == "fable-4"


def test_streaming_through_both_sdks(gateway: Running) -> None:
    chunks = list(
        oai(gateway, "dana").chat.completions.create(model="mythos-5", messages=HELLO, stream=True)
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "demo" in text.lower() and len(chunks) > 3
    with ant(gateway, "luis").messages.stream(
        model="fable-5", max_tokens=64, messages=HELLO
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "demo" in streamed.lower()
    assert final.model == "fable-5"


def test_anthropic_fallback_and_denial(gateway: Running) -> None:
    msg = ant(gateway, "sven").messages.create(model="mythos-5", max_tokens=32, messages=HELLO)
    assert msg.model == "fable-4"
    strict = gateway.anthropic(gateway.strict_key("nina"))
    with pytest.raises(anthropic.APIStatusError) as err:
        strict.messages.create(model="fable-5", max_tokens=32, messages=HELLO, stream=True)
    assert err.value.status_code == 451
    body = err.value.response.json()
    assert body["type"] == "error"
    assert "Verify your identity" in body["error"]["message"]


def test_kill_switch_from_another_process_reaches_the_gateway_within_a_second(
    gateway: Running,
) -> None:
    client = oai(gateway, "erik")
    strict = gateway.openai(gateway.strict_key("alice"))
    assert client.chat.completions.create(model="fable-5", messages=HELLO).model == "fable-5"
    # The CLI in its own process; the gateway's poller, not the test, must notice in time.
    gateway.cli_process("models", "suspend", "fable-5", "--reason", "incident 7")
    served_within_a_second(client, "fable-4")
    with pytest.raises(openai.APIStatusError) as err:
        strict.chat.completions.create(model="fable-5", messages=HELLO)
    assert err.value.status_code == 451
    assert "incident 7" in err.value.response.json()["error"]["message"]
    gateway.cli_process("models", "resume", "fable-5")
    served_within_a_second(strict, "fable-5")


def served_within_a_second(client: openai.OpenAI, expected: str) -> None:
    started = time.monotonic()
    while True:
        try:
            served = client.chat.completions.create(model="fable-5", messages=HELLO).model
        except openai.APIStatusError:
            served = None
        if served == expected:
            return
        assert time.monotonic() - started < 1.0, f"still {served}, not {expected}, after 1 s"


def test_models_list_differs_by_persona(gateway: Running) -> None:
    ids = {
        who: {m.id for m in oai(gateway, who).models.list()} for who in ("alice", "sven", "erik")
    }
    assert ids["alice"] == {"fable-4", "fable-5", "mythos-5"}
    assert ids["sven"] == {"fable-4"}
    assert ids["erik"] == {"fable-4", "fable-5"}
    anthropic_ids = {m.id for m in ant(gateway, "sven").models.list()}
    assert anthropic_ids == {"fable-4"}


def test_other_endpoints(gateway: Running) -> None:
    client = oai(gateway, "alice")
    emb = client.embeddings.create(model="fable-4", input="hello")
    assert len(emb.data[0].embedding) > 0
    resp = client.responses.create(model="mythos-5", input="hello")
    assert resp.model == "mythos-5" and "demo" in resp.output_text.lower()
    count = ant(gateway, "alice").messages.count_tokens(model="fable-5", messages=HELLO)
    assert count.input_tokens > 0


def test_errors_in_each_sdk_shape(gateway: Running) -> None:
    bad = gateway.openai("sk-clr-nope-nope-nope-nope")
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="fable-4", messages=HELLO)
    with pytest.raises(anthropic.AuthenticationError):
        gateway.anthropic("x").messages.create(model="fable-4", max_tokens=8, messages=HELLO)
    with pytest.raises(openai.NotFoundError):
        oai(gateway, "alice").chat.completions.create(model="gpt-99", messages=HELLO)
    with httpx.Client(base_url=gateway.url) as http:
        auth = {"authorization": f"Bearer {gateway.key('alice')}"}
        r = http.post("/v1/chat/completions", headers=auth, content=b"{not json")
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
        big = b'{"model": "fable-4", "x": "' + b"a" * (5 * 1024 * 1024) + b'"}'
        r = http.post("/v1/messages", headers={"x-api-key": gateway.key("alice")}, content=big)
        assert r.status_code == 413 and r.json()["type"] == "error"
        r = http.get(f"/v1/models?key={gateway.key('alice')}")
        assert r.status_code == 401


def test_metrics_and_health(gateway: Running) -> None:
    oai(gateway, "alice").chat.completions.create(model="mythos-5", messages=HELLO)
    oai(gateway, "sven").chat.completions.create(model="mythos-5", messages=HELLO)
    with httpx.Client(base_url=gateway.url) as http:
        assert http.get("/healthz").json()["status"] == "ok"
        text = http.get("/metrics").text
    assert 'clearance_decisions_total{effect="allow",rule="authenticated-principal"}' in text
    assert 'clearance_decisions_total{effect="fallback",rule="controlled-foreign-person"}' in text
    for name in (
        "clearance_added_latency_seconds_count",
        "clearance_upstream_latency_seconds_count",
        "clearance_audit_wait_seconds_count",
        "clearance_audit_batch_size_count",
    ):
        count = next(line for line in text.splitlines() if line.startswith(name))
        assert float(count.split()[-1]) >= 2, count
