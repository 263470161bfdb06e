"""The demo upstream, spoken to directly by the official openai and anthropic SDKs."""

from __future__ import annotations

import base64
import math
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import anthropic
import openai
import orjson
import pytest

from clearance.demo.upstream import DemoUpstream, demo_upstream_app
from clearance.net.serving import serve_in_thread

HELLO = [{"role": "user", "content": "Hello, demo"}]  # 11 characters


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[DemoUpstream, str]]:
    app = demo_upstream_app(chunk_delay=0.0, stall_limit=5.0)
    with serve_in_thread(app, lifespan="off") as url:
        yield app, url


@pytest.fixture
def oai(demo: tuple[DemoUpstream, str]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=demo[1] + "/v1", api_key="sk-test", max_retries=0) as client:
        yield client


@pytest.fixture
def ant(demo: tuple[DemoUpstream, str]) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=demo[1], api_key="sk-ant-test", max_retries=0) as client:
        yield client


def post(url: str, body: bytes, **headers: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, orjson.loads(err.read())


# --- OpenAI ----------------------------------------------------------------------------------


def test_chat_completion_names_the_model_and_says_it_is_a_demo(oai: openai.OpenAI) -> None:
    first = oai.chat.completions.create(model="fable-5", messages=HELLO)  # type: ignore[arg-type]
    again = oai.chat.completions.create(model="fable-5", messages=HELLO)  # type: ignore[arg-type]
    text = first.choices[0].message.content
    assert first.model == "fable-5"
    assert text is not None and text.startswith("[Clearance demo upstream] Model fable-5 ")
    assert "received 11 characters" in text
    assert again.choices[0].message.content == text  # deterministic
    assert first.choices[0].finish_reason == "stop"
    assert first.usage is not None and first.usage.completion_tokens == len(text.split(" "))


def test_chat_stream_matches_the_whole_reply_and_ends_with_done(oai: openai.OpenAI) -> None:
    whole = oai.chat.completions.create(model="mythos-5", messages=HELLO)  # type: ignore[arg-type]
    chunks = list(
        oai.chat.completions.create(model="mythos-5", messages=HELLO, stream=True)  # type: ignore[arg-type]
    )
    deltas = [c.choices[0].delta.content or "" for c in chunks]
    assert "".join(deltas) == whole.choices[0].message.content
    assert all(c.model == "mythos-5" for c in chunks)
    assert [c.choices[0].finish_reason for c in chunks][-2:] == [None, "stop"]
    assert len(chunks) > 5 and all(1 <= len(d.split()) <= 3 for d in deltas[1:-1])
    with oai.chat.completions.with_streaming_response.create(
        model="mythos-5",
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
    ) as raw:
        lines = [line for line in raw.iter_lines() if line]
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert lines[-1] == "data: [DONE]"


def test_chat_stream_usage_and_max_tokens(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="fable-4",
            messages=HELLO,  # type: ignore[arg-type]
            stream=True,
            max_tokens=4,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4
    assert chunks[-2].choices[0].finish_reason == "length"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[Clearance demo upstream] Model"  # four words: four tokens


def test_responses_create_and_stream(oai: openai.OpenAI) -> None:
    whole = oai.responses.create(model="fable-5", input="Hello, demo")
    assert whole.model == "fable-5" and whole.status == "completed"
    assert whole.output_text.startswith("[Clearance demo upstream] Model fable-5 received 11 ")
    events = list(oai.responses.create(model="fable-5", input="Hello, demo", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-1] == "response.completed" and kinds.count("response.output_text.delta") > 5
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == whole.output_text
    with oai.responses.stream(model="fable-5", input="Hello, demo") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == whole.output_text


def test_responses_max_output_tokens_is_incomplete(oai: openai.OpenAI) -> None:
    cut = oai.responses.create(model="fable-5", input="Hello", max_output_tokens=3)
    assert cut.status == "incomplete" and cut.output_text == "[Clearance demo upstream]"
    assert cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"


def test_embeddings_base64_by_default_equal_floats(oai: openai.OpenAI) -> None:
    default = oai.embeddings.create(model="embed-1", input=["alpha", "beta"])  # SDK asks base64
    floats = oai.embeddings.create(
        model="embed-1", input=["alpha", "beta"], encoding_format="float"
    )
    assert default.model == "embed-1" and len(default.data) == 2
    assert [d.embedding for d in default.data] == [d.embedding for d in floats.data]
    vector = default.data[0].embedding
    assert len(vector) == 64 and math.isclose(math.fsum(v * v for v in vector), 1.0, rel_tol=1e-5)
    assert default.data[0].embedding != default.data[1].embedding
    assert len(oai.embeddings.create(model="e", input="x", dimensions=8).data[0].embedding) == 8


def test_embeddings_base64_is_little_endian_float32(demo: tuple[DemoUpstream, str]) -> None:
    body = {"model": "e", "input": "alpha", "encoding_format": "base64", "dimensions": 4}
    status, raw = post(demo[1] + "/v1/embeddings", orjson.dumps(body))
    _, floats = post(demo[1] + "/v1/embeddings", orjson.dumps({**body, "encoding_format": "float"}))
    assert status == 200
    encoded = raw["data"][0]["embedding"]  # type: ignore[index]
    assert struct.unpack("<4f", base64.b64decode(encoded)) == tuple(floats["data"][0]["embedding"])  # type: ignore[index]


def test_models_in_each_apis_shape(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    assert [m.id for m in oai.models.list()] == ["fable-4", "fable-5", "mythos-5"]
    listed = list(ant.models.list())
    assert [m.id for m in listed] == ["fable-4", "fable-5", "mythos-5"]
    assert all(m.type == "model" for m in listed)


# --- Anthropic -------------------------------------------------------------------------------


def test_messages_create(ant: anthropic.Anthropic) -> None:
    message = ant.messages.create(
        model="mythos-5",
        max_tokens=1024,
        system="Be brief.",
        messages=HELLO,  # type: ignore[arg-type]
    )
    assert message.model == "mythos-5" and message.stop_reason == "end_turn"
    block = message.content[0]
    assert block.type == "text"
    assert block.text.startswith("[Clearance demo upstream] Model mythos-5 received 20 characters")
    assert message.usage.output_tokens == len(block.text.split(" "))


def test_messages_stream_event_order(ant: anthropic.Anthropic) -> None:
    whole = ant.messages.create(model="fable-5", max_tokens=1024, messages=HELLO)  # type: ignore[arg-type]
    events = list(
        ant.messages.create(model="fable-5", max_tokens=1024, messages=HELLO, stream=True)  # type: ignore[arg-type]
    )
    # The SDK drops `ping`; on the wire it comes third.
    with ant.messages.with_streaming_response.create(
        model="fable-5",
        max_tokens=1024,
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
    ) as raw:
        wire = [line.removeprefix("event: ") for line in raw.iter_lines() if line[:6] == "event:"]
    deltas = wire.count("content_block_delta")
    assert deltas > 5
    assert wire == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert [e.type for e in events] == [k for k in wire if k != "ping"]
    with ant.messages.stream(model="fable-5", max_tokens=1024, messages=HELLO) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == whole.content[0].text  # type: ignore[union-attr]
    assert final.model == "fable-5" and final.stop_reason == "end_turn"


def test_messages_max_tokens_stops_early(ant: anthropic.Anthropic) -> None:
    with ant.messages.stream(model="fable-5", max_tokens=2, messages=HELLO) as stream:  # type: ignore[arg-type]
        assert "".join(stream.text_stream) == "[Clearance demo"
        assert stream.get_final_message().stop_reason == "max_tokens"


def test_count_tokens(ant: anthropic.Anthropic) -> None:
    counted = ant.messages.count_tokens(
        model="fable-5",
        system="Be brief.",
        messages=HELLO,  # type: ignore[arg-type]
    )
    assert counted.input_tokens == 5  # 20 characters at ~4 a token


# --- errors, in the shape each SDK expects ---------------------------------------------------


def test_malformed_json_is_400_in_each_shape(demo: tuple[DemoUpstream, str]) -> None:
    status, body = post(demo[1] + "/v1/chat/completions", b"{not json")
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    status, body = post(demo[1] + "/v1/messages", b"[1, 2")
    assert status == 400 and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


def test_sdk_errors_for_bad_requests(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    with pytest.raises(openai.BadRequestError, match="model"):
        oai.chat.completions.create(model="", messages=HELLO)  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        ant.messages.create(model="fable-5", max_tokens=0, messages=HELLO)  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        oai.completions.create(model="fable-5", prompt="legacy endpoint")


# --- simulated faults ------------------------------------------------------------------------


def fault(name: str) -> dict[str, str]:
    return {"x-demo-fault": name}


def test_fault_status(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="f", messages=HELLO, extra_headers=fault("status-500"))  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError):
        oai.responses.create(model="f", input="x", extra_headers=fault("status-429"))
    with pytest.raises(anthropic.InternalServerError) as caught:
        ant.messages.create(
            model="f",
            max_tokens=5,
            messages=HELLO,  # type: ignore[arg-type]
            extra_headers=fault("status-500"),
        )
    assert caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError, match="unknown x-demo-fault"):
        oai.models.list(extra_headers=fault("explode"))


def test_fault_stall_before_headers(demo: tuple[DemoUpstream, str]) -> None:
    client = openai.OpenAI(base_url=demo[1] + "/v1", api_key="k", max_retries=0, timeout=0.3)
    with client, pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(
            model="f",
            messages=HELLO,  # type: ignore[arg-type]
            extra_headers=fault("stall-before-headers"),
        )


def test_fault_stall_mid_stream(demo: tuple[DemoUpstream, str]) -> None:
    # The read timeout must outlast the first events on a loaded machine (0.3 s did not in CI,
    # which then saw no event at all); the stall after them lasts for ever.
    client = anthropic.Anthropic(base_url=demo[1], api_key="k", max_retries=0, timeout=1.0)
    kinds: list[str] = []
    # A timeout while iterating is the SDK's own timeout error, whatever transport it runs on.
    with client, pytest.raises(anthropic.APITimeoutError):
        stream = client.messages.create(
            model="f",
            max_tokens=100,
            messages=HELLO,  # type: ignore[arg-type]
            stream=True,
            extra_headers=fault("stall-mid-stream"),
        )
        kinds.extend(e.type for e in stream)
    assert kinds[:3] == ["message_start", "content_block_start", "content_block_delta"]
    assert "message_stop" not in kinds


def test_fault_reset(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.APIConnectionError):
        oai.embeddings.create(model="e", input="x", extra_headers=fault("reset"))
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        stream = oai.chat.completions.create(
            model="f",
            messages=HELLO,  # type: ignore[arg-type]
            stream=True,
            extra_headers=fault("reset"),
        )
        received.extend(c.choices[0].delta.content or "" for c in stream)
    assert received and "to end." not in "".join(received)


def test_fault_malformed_sse(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    stream = oai.chat.completions.create(
        model="f",
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
        extra_headers=fault("malformed-sse"),
    )
    with pytest.raises(ValueError):
        list(stream)
    with pytest.raises(ValueError):
        ant.messages.create(
            model="f",
            max_tokens=9,
            messages=HELLO,  # type: ignore[arg-type]
            extra_headers=fault("malformed-sse"),
        )


# --- pacing and what the upstream saw --------------------------------------------------------


def test_chunk_delay_paces_the_stream() -> None:
    delay = 0.02
    with serve_in_thread(demo_upstream_app(chunk_delay=delay), lifespan="off") as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0)
        with client:
            stream = client.chat.completions.create(model="f", messages=HELLO, stream=True)  # type: ignore[arg-type]
            arrivals = [time.monotonic() for _ in stream]
    # Each chunk is its own write, `delay` apart: the stream is paced, not one buffered body.
    assert arrivals[-1] - arrivals[0] >= (len(arrivals) - 2) * delay


def test_seen_records_what_arrived(demo: tuple[DemoUpstream, str], oai: openai.OpenAI) -> None:
    oai.chat.completions.create(
        model="fable-5",
        messages=HELLO,  # type: ignore[arg-type]
        extra_headers={"x-user-id": "client-claimed"},
    )
    seen = demo[0].seen[-1]
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    assert seen.headers["authorization"] == "Bearer sk-test"
    assert seen.headers["x-user-id"] == "client-claimed"
    assert orjson.loads(seen.body)["model"] == "fable-5"
