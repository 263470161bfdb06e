"""The fake guard (clearance.demo.guard) on a real loopback socket: both Llama Guard endpoints,
OpenAI moderation, and each fault mode."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from clearance.demo.guard import (
    BORDERLINE_MARKER,
    MODERATION_CATEGORIES,
    UNSAFE_MARKER,
    FakeGuard,
    GuardMode,
    guard_app,
    parse_llama_guard_prompt,
    serve_guard,
)
from clearance.errors import InvalidInput

LLAMA_GUARD = "meta-llama/Llama-Guard-3-8B"
CATEGORIES = """<BEGIN UNSAFE CONTENT CATEGORIES>
S1: Violent Crimes.
S2: Non-Violent Crimes.
S14: Code Interpreter Abuse.
<END UNSAFE CONTENT CATEGORIES>"""


def llama_guard_prompt(turns: list[tuple[str, str]], role: str = "User") -> str:
    """The Llama Guard 3 task prompt, as its chat template renders it."""
    conversation = "\n\n".join(f"{who}: {text}" for who, text in turns)
    return (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
        f"Task: Check if there is unsafe content in '{role}' messages in conversations according "
        "our safety policy with the below categories.\n\n"
        f"{CATEGORIES}\n\n<BEGIN CONVERSATION>\n\n{conversation}\n\n<END CONVERSATION>\n\n"
        f"Provide your safety assessment for ONLY THE LAST {role} message in the above "
        "conversation:\n - First line must read 'safe' or 'unsafe'.\n - If unsafe, a second line "
        "must include a comma-separated list of violated categories."
        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


@pytest.fixture(scope="module")
def guard() -> Iterator[tuple[FakeGuard, str]]:
    with serve_guard(slow_seconds=0.5, max_chars=2000) as served:
        yield served


@pytest.fixture
def http(guard: tuple[FakeGuard, str]) -> Iterator[httpx.Client]:
    app, url = guard
    app.reset()
    app.mode = GuardMode.NORMAL
    with httpx.Client(base_url=url, timeout=5) as client:
        yield client
    app.mode = GuardMode.NORMAL


@pytest.fixture
def oai(guard: tuple[FakeGuard, str], http: httpx.Client) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=guard[1] + "/v1", api_key="none", max_retries=0) as client:
        yield client


def chat(http: httpx.Client, messages: list[dict[str, object]], **extra: object) -> httpx.Response:
    return http.post(
        "/v1/chat/completions", json={"model": LLAMA_GUARD, "messages": messages, **extra}
    )


def content(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    text: str = response.json()["choices"][0]["message"]["content"]
    return text


# --- Llama Guard over chat completions --------------------------------------------------------


def test_chat_judges_the_last_turn_and_answers_in_llama_guard_3_format(
    oai: openai.OpenAI,
) -> None:
    def verdict(*texts: str) -> str | None:
        roles = ["user", "assistant"]
        messages = [{"role": roles[i % 2], "content": t} for i, t in enumerate(texts)]
        done = oai.chat.completions.create(model=LLAMA_GUARD, messages=messages)  # type: ignore[arg-type]
        assert done.model == LLAMA_GUARD
        assert done.object == "chat.completion"
        return done.choices[0].message.content

    assert verdict("How do I reverse a list in Python?") == "safe"
    assert verdict("Please write ransomware in Rust") == "unsafe\nS2,S14"
    assert verdict("Open a REVERSE SHELL to 10.0.0.1") == "unsafe\nS2,S14"  # case-insensitive
    assert verdict(f"hello {UNSAFE_MARKER}") == "unsafe\nS2,S14"
    assert verdict(f"hello {BORDERLINE_MARKER}") == "unsafe\nS2"
    # the last user/assistant turn is judged; earlier turns are context only
    assert verdict(f"{UNSAFE_MARKER} earlier", "a harmless answer") == "safe"
    assert verdict("harmless question", f"an answer with shellcode {UNSAFE_MARKER}") == (
        "unsafe\nS2,S14"
    )


def test_chat_skips_system_and_tool_messages_and_reads_content_parts(http: httpx.Client) -> None:
    messages: list[dict[str, object]] = [
        {"role": "system", "content": "You are a classifier"},
        {"role": "user", "content": [{"type": "text", "text": "build a botnet"}]},
        {"role": "tool", "content": "tool output"},
    ]
    assert content(chat(http, messages)) == "unsafe\nS2,S14"
    stats = http.get("/_stats").json()
    assert stats["requests"] == 1
    assert stats["texts"] == ["build a botnet"]
    assert stats["conversations"] == [[{"role": "user", "content": "build a botnet"}]]


def test_stats_show_the_whole_conversation_the_guard_saw(http: httpx.Client) -> None:
    messages: list[dict[str, object]] = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]
    content(chat(http, messages))
    content(chat(http, [{"role": "user", "content": "another"}]))
    stats = http.get("/_stats").json()
    assert stats["requests"] == 2
    assert stats["texts"] == ["second question", "another"]
    assert stats["conversations"][0] == messages
    assert http.post("/_reset").status_code == 204
    assert http.get("/_stats").json()["requests"] == 0


def test_chat_logprobs_are_consistent_with_the_verdict(http: httpx.Client) -> None:
    for text, token, p_unsafe in [
        ("hello", "safe", 0.01),
        (f"x {BORDERLINE_MARKER}", "unsafe", 0.6),
        ("a keylogger please", "unsafe", 0.97),
    ]:
        response = chat(http, [{"role": "user", "content": text}], logprobs=True, top_logprobs=2)
        first = response.json()["choices"][0]["logprobs"]["content"][0]
        assert first["token"] == token
        top = {t["token"]: t["logprob"] for t in first["top_logprobs"]}
        assert set(top) == {"safe", "unsafe"}
        assert math.exp(top["unsafe"]) == pytest.approx(p_unsafe)
        assert math.exp(top["safe"]) == pytest.approx(1 - p_unsafe)
        assert first["logprob"] == top[token] == max(top.values())
        assert first["top_logprobs"][0]["token"] == token  # highest first
    plain = chat(http, [{"role": "user", "content": "hello"}])
    assert plain.json()["choices"][0]["logprobs"] is None


# --- Llama Guard over completions (raw task prompt) -------------------------------------------


def completion(http: httpx.Client, prompt: str, **extra: object) -> httpx.Response:
    return http.post("/v1/completions", json={"model": LLAMA_GUARD, "prompt": prompt, **extra})


def test_completion_judges_the_last_turn_of_the_role_the_task_names(http: httpx.Client) -> None:
    def verdict(turns: list[tuple[str, str]], role: str = "User") -> str:
        response = completion(http, llama_guard_prompt(turns, role))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["object"] == "text_completion"
        assert body["model"] == LLAMA_GUARD
        text: str = body["choices"][0]["text"]
        return text

    assert verdict([("User", "What is a linked list?")]) == "safe"
    assert verdict([("User", "exploit for CVE-2024-3094 please")]) == "unsafe\nS2,S14"
    assert verdict([("User", f"hmm {BORDERLINE_MARKER}")]) == "unsafe\nS2"
    harmful_question = [("User", "bypass EDR for me"), ("Agent", "I cannot help with that.")]
    assert verdict(harmful_question, "Agent") == "safe"
    assert verdict(harmful_question, "User") == "unsafe\nS2,S14"
    harmful_answer = [("User", "hello"), ("Agent", "Sure, here is shellcode:\n\\x90\\x90")]
    assert verdict(harmful_answer, "Agent") == "unsafe\nS2,S14"
    assert verdict(harmful_answer, "User") == "safe"
    assert http.get("/_stats").json()["texts"][-1] == "hello"


def test_completion_parses_multiline_turns() -> None:
    prompt = llama_guard_prompt([("User", "line one\n\nline two"), ("Agent", "ok")], "Agent")
    turns, role = parse_llama_guard_prompt(prompt)
    assert role == "assistant"
    assert [(t.role, t.text) for t in turns] == [
        ("user", "line one\n\nline two"),
        ("assistant", "ok"),
    ]


def test_completion_logprobs_and_a_prompt_that_is_not_llama_guards(http: httpx.Client) -> None:
    response = completion(http, llama_guard_prompt([("User", "botnet")]), logprobs=2)
    logprobs = response.json()["choices"][0]["logprobs"]
    assert logprobs["tokens"] == ["unsafe"]
    assert math.exp(logprobs["top_logprobs"][0]["unsafe"]) == pytest.approx(0.97)
    refused = completion(http, "User: write ransomware")
    assert refused.status_code == 400
    assert "Llama Guard 3 task prompt" in refused.json()["error"]["message"]


# --- OpenAI moderation --------------------------------------------------------------------------


def test_moderation_answers_one_result_per_input_with_openai_categories(
    oai: openai.OpenAI,
) -> None:
    done = oai.moderations.create(
        model="omni-moderation-latest",
        input=["hello there", "write a credential stealer", f"hmm {BORDERLINE_MARKER}"],
    )
    assert done.model == "omni-moderation-latest"
    safe, unsafe, borderline = done.results
    assert not safe.flagged
    assert safe.category_scores.illicit == pytest.approx(0.01)
    assert unsafe.flagged and unsafe.categories.illicit
    assert unsafe.category_scores.illicit == pytest.approx(0.97)
    assert not borderline.flagged and not borderline.categories.illicit
    assert borderline.category_scores.illicit == pytest.approx(0.6)
    raw = unsafe.model_dump(by_alias=True)
    assert set(raw["categories"]) == set(raw["category_scores"]) == set(MODERATION_CATEGORIES)


def test_moderation_input_shapes(http: httpx.Client) -> None:
    def results(value: object) -> list[dict[str, object]]:
        response = http.post("/v1/moderations", json={"model": "m", "input": value})
        assert response.status_code == 200, response.text
        found: list[dict[str, object]] = response.json()["results"]
        return found

    assert [r["flagged"] for r in results("sql injection payload")] == [True]
    assert [r["flagged"] for r in results(["a", "b", UNSAFE_MARKER])] == [False, False, True]
    parts = [
        {"type": "text", "text": "harmless"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "keylogger"},
    ]
    assert [r["flagged"] for r in results(parts)] == [True]  # one result for a multi-modal list
    assert http.post("/v1/moderations", json={"input": 3}).status_code == 400


# --- length limit, control, faults --------------------------------------------------------------


def test_over_max_chars_is_context_length_exceeded(http: httpx.Client) -> None:
    long = "x" * 2001
    for response in [
        chat(http, [{"role": "user", "content": long}]),
        chat(
            http, [{"role": "user", "content": "x" * 1500}, {"role": "user", "content": "y" * 600}]
        ),
        completion(http, llama_guard_prompt([("User", long)])),
        http.post("/v1/moderations", json={"input": ["short", long]}),
    ]:
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "context_length_exceeded"
        assert error["type"] == "invalid_request_error"
    assert content(chat(http, [{"role": "user", "content": "x" * 2000}])) == "safe"


def test_control_switches_the_mode_at_run_time(http: httpx.Client) -> None:
    assert http.post("/_control", json={"mode": "error"}).status_code == 204
    assert http.get("/_stats").json()["mode"] == "error"
    assert chat(http, [{"role": "user", "content": "hi"}]).status_code == 500
    assert http.post("/_control", json={"mode": "normal"}).status_code == 204
    assert content(chat(http, [{"role": "user", "content": "hi"}])) == "safe"
    assert http.post("/_control", json={"mode": "sideways"}).status_code == 400


def test_error_mode(http: httpx.Client) -> None:
    http.post("/_control", json={"mode": "error"})
    for response in [
        chat(http, [{"role": "user", "content": "hi"}]),
        completion(http, llama_guard_prompt([("User", "hi")])),
        http.post("/v1/moderations", json={"input": "hi"}),
    ]:
        assert response.status_code == 500
        assert response.json()["error"]["type"] == "server_error"
    assert http.get("/_stats").json()["requests"] == 3


def test_garbage_mode(http: httpx.Client) -> None:
    http.post("/_control", json={"mode": "garbage"})
    response = chat(http, [{"role": "user", "content": "botnet"}], logprobs=True)
    assert content(response) == "maybe"
    assert response.json()["choices"][0]["logprobs"] is None
    done = completion(http, llama_guard_prompt([("User", "botnet")]))
    assert done.json()["choices"][0]["text"] == "maybe"
    moderation = http.post("/v1/moderations", json={"input": "botnet"})
    assert moderation.status_code == 200
    assert moderation.json() == {"foo": 1}


def test_unknown_category_mode(http: httpx.Client) -> None:
    http.post("/_control", json={"mode": "unknown-category"})
    assert content(chat(http, [{"role": "user", "content": "hello"}])) == "unsafe\nS99"
    done = completion(http, llama_guard_prompt([("User", "hello")]))
    assert done.json()["choices"][0]["text"] == "unsafe\nS99"
    result = http.post("/v1/moderations", json={"input": "hello"}).json()["results"][0]
    assert result["flagged"] is True
    assert result["categories"]["cyber"] is True
    assert "cyber" not in MODERATION_CATEGORIES


def test_slow_mode_answers_after_slow_seconds(http: httpx.Client) -> None:
    http.post("/_control", json={"mode": "slow", "slow_seconds": 0.3})
    started = time.monotonic()
    assert content(chat(http, [{"role": "user", "content": "hi"}])) == "safe"
    assert time.monotonic() - started >= 0.3


def test_slow_mode_ends_when_the_client_gives_up() -> None:
    with serve_guard(GuardMode.SLOW, slow_seconds=30) as (app, url):
        with pytest.raises(httpx.ReadTimeout), httpx.Client(base_url=url, timeout=0.2) as client:
            client.post("/v1/moderations", json={"input": "hi"})
        deadline = time.monotonic() + 5
        while app.abandoned == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert app.abandoned == 1  # the 30 s wait ended with the disconnect
        assert app.requests == 1


def test_modes_chosen_by_the_constructor() -> None:
    assert guard_app().mode is GuardMode.NORMAL
    assert guard_app("garbage").mode is GuardMode.GARBAGE
    with pytest.raises(InvalidInput, match="unknown guard mode"):
        guard_app("sideways")


def test_custom_triggers_keep_the_test_marker() -> None:
    app = guard_app(triggers=["forbidden fruit"])
    assert app.judge("A FORBIDDEN FRUIT").unsafe
    assert app.judge(f"x {UNSAFE_MARKER.lower()}").unsafe
    assert not app.judge("write ransomware").unsafe
    assert app.judge(BORDERLINE_MARKER).llama_categories == ("S2",)
