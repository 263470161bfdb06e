"""The guard's parts on their own: reading Llama Guard and moderation answers, the conversation a
classifier is shown, windows, and a stream read event by event however its bytes are split."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import orjson
import pytest

from clearance.catalog.models import Model
from clearance.config import GuardSettings
from clearance.guard import conversation
from clearance.guard.adapters import parse_llama_guard, task_prompt
from clearance.guard.models import GuardError, Turn, Verdict
from clearance.guard.service import Guard
from clearance.guard.stream import StreamReader

CONTROLLED = Model(id="m", upstream="u", upstream_model="m", controlled=True, rationale="r")
OPEN = Model(id="o", upstream="u", upstream_model="o", controlled=False, rationale="r")


@pytest.mark.parametrize(
    ("answer", "wanted", "outcome", "categories"),
    [
        ("safe", (), "clear", ()),
        ("  safe\n", (), "clear", ()),
        ("unsafe\nS2,S14", (), "flagged", ("S2", "S14")),
        ("unsafe\nS2, S14", ("S14",), "flagged", ("S2", "S14")),
        (
            "unsafe\nS10",
            ("S2", "S14"),
            "clear",
            ("S10",),
        ),  # unsafe, but not in a category that flags
    ],
)
def test_llama_guard_answers(
    answer: str, wanted: tuple[str, ...], outcome: str, categories: tuple[str, ...]
) -> None:
    verdict = parse_llama_guard(answer, None, frozenset(wanted))
    assert (verdict.outcome, verdict.categories) == (outcome, categories)


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ("maybe", "bad_answer"),
        ("", "bad_answer"),
        ("unsafe", "unknown_category"),
        ("unsafe\nS99", "unknown_category"),
        ("unsafe\ncyber", "unknown_category"),
    ],
)
def test_llama_guard_garbage_is_a_failed_check(answer: str, code: str) -> None:
    with pytest.raises(GuardError) as failed:
        parse_llama_guard(answer, None, frozenset())
    assert failed.value.code == code


def test_the_llama_guard_3_task_prompt_lists_only_the_configured_categories() -> None:
    prompt = task_prompt([Turn("user", "hi"), Turn("assistant", "hello")], ("S14",))
    assert "S14: Code Interpreter Abuse." in prompt and "S1:" not in prompt
    assert "'Agent' messages" in prompt and "ONLY THE LAST Agent message" in prompt
    assert "User: hi\n\nAgent: hello" in prompt


def test_the_transcript_holds_every_turn_the_upstream_sees() -> None:
    text = conversation.prompt_text(
        "/v1/messages",
        {
            "system": [{"type": "text", "text": "SYSTEM-X"}],
            "tools": [{"name": "f", "description": "TOOL-DESC-X", "input_schema": {}}],
            "messages": [
                {"role": "user", "content": "USER-X"},
                {"role": "assistant", "content": [{"type": "tool_use", "input": {"q": "ARG-X"}}]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "content": [{"text": "RESULT-X"}]}],
                },
            ],
        },
    )
    for part in ("SYSTEM-X", "TOOL-DESC-X", "USER-X", "ARG-X", "RESULT-X"):
        assert part in text
    chat = conversation.prompt_text(
        "/v1/chat/completions",
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "PART-X"}]},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"function": {"name": "f", "arguments": "CALL-X"}}],
                },
            ]
        },
    )
    assert "PART-X" in chat and "CALL-X" in chat
    responses = conversation.prompt_text(
        "/v1/responses", {"instructions": "INSTR-X", "input": "INPUT-X"}
    )
    assert "INSTR-X" in responses and "INPUT-X" in responses


def test_windows_cover_everything_and_overlap() -> None:
    text = "".join(f"{i:05d}" for i in range(5000))  # 25,000 characters
    pieces = conversation.windows(text, 4000)
    assert all(len(p) <= 4000 for p in pieces)
    assert pieces[0] == text[:4000] and text.endswith(pieces[-1])
    for left, right in itertools.pairwise(pieces):
        assert left[-conversation.OVERLAP :] == right[: conversation.OVERLAP]
    assert conversation.windows("short", 4000) == ["short"]


def _chat_stream() -> bytes:
    chunks: list[dict[str, object]] = [
        {
            "id": "c1",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}],
        }
        for w in ("Hello ", "wide ", "world")
    ]
    chunks.append({"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return b"".join(b"data: " + orjson.dumps(c) + b"\r\n\r\n" for c in chunks) + b"data: [DONE]\n\n"


@pytest.mark.parametrize("size", [1, 7, 64, 10_000])
def test_a_stream_is_read_whole_event_by_event_however_it_is_split(size: int) -> None:
    raw = _chat_stream()
    reader = StreamReader("/v1/chat/completions", tokens=1, interval_ms=10_000)
    forwarded = b"".join(reader.feed(raw[i : i + size]) for i in range(0, len(raw), size))
    assert "".join(reader.text) == "Hello wide world"
    assert forwarded.count(b"\r\n\r\n") == 3  # the three content events, each whole
    assert b'finish_reason":"stop' in b"".join(reader.held) and b"[DONE]" in reader.held[-1]
    assert reader.due()
    start, text = reader.take()
    assert (start, text, reader.due()) == (0, "Hello wide world", False)
    cut = reader.cut()
    assert b'"finish_reason":"content_filter"' in cut and cut.endswith(b"data: [DONE]\n\n")
    assert b'"id":"c1"' in cut


def test_an_anthropic_cut_closes_the_open_block() -> None:
    reader = StreamReader("/v1/messages", tokens=64, interval_ms=1000)
    events = [
        ("message_start", {"type": "message_start", "message": {"id": "msg_1"}}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hi"},
            },
        ),
    ]
    raw = b"".join(b"event: %s\ndata: %s\n\n" % (n.encode(), orjson.dumps(d)) for n, d in events)
    assert reader.feed(raw) == raw
    cut = reader.cut().decode()
    assert cut.index("content_block_stop") < cut.index('"stop_reason":"refusal"')
    assert cut.rstrip().endswith('data: {"type":"message_stop"}')


class _Scripted:
    name = "scripted"

    def __init__(self, answers: dict[str, Verdict | GuardError], delay: float = 0) -> None:
        self.answers = answers
        self.delay = delay
        self.seen: list[str] = []

    async def classify(self, turns: Sequence[Turn]) -> Verdict:
        await asyncio.sleep(self.delay)
        text = turns[-1].text
        self.seen.append(text)
        for key, answer in self.answers.items():
            if key in text:
                if isinstance(answer, GuardError):
                    raise answer
                return answer
        return Verdict("clear", (), 0.01)


def _guard(classifier: _Scripted, **settings: object) -> Guard:
    config = GuardSettings(kind="python", entry_point="x:y", window_chars=1000, **settings)  # type: ignore[arg-type]
    return Guard(config, b"k" * 32, classifier)


def test_one_flagged_window_flags_the_text_whatever_failed_elsewhere() -> None:
    text = "A" * 1500 + "BROKEN" + "B" * 1500 + "EVIL"
    classifier = _Scripted(
        {"EVIL": Verdict("flagged", ("S14",), 0.9), "BROKEN": GuardError("http_5xx")}
    )
    check = asyncio.run(_guard(classifier).check_prompt(text, CONTROLLED))
    assert check.verdict.flagged and check.excerpt.endswith("EVIL")
    assert len(classifier.seen) == len(conversation.windows(text, 1000)) == 5  # every one
    only_broken = asyncio.run(_guard(classifier).check_prompt("BROKEN", CONTROLLED))
    assert (only_broken.verdict.outcome, only_broken.verdict.error) == ("error", "http_5xx")
    assert only_broken.fail_open is False


def test_a_slow_guard_times_out_and_the_fail_mode_is_per_model() -> None:
    slow = _Scripted({}, delay=5)
    guard = _guard(slow, timeout_ms=50, fail_open_models=("m",), on_error="open")
    check = asyncio.run(guard.check_prompt("hello", CONTROLLED))
    assert (check.verdict.error, check.fail_open) == ("timeout", True)
    assert check.elapsed_ms < 2000
    closed = _guard(slow, timeout_ms=50)
    assert asyncio.run(closed.check_prompt("hello", CONTROLLED)).fail_open is False
    assert asyncio.run(closed.check_prompt("hello", OPEN)).fail_open is False
    assert _guard(slow, on_error="open").fail_open(OPEN) is True
    # The digest is keyed: the same text under another key digests differently.
    assert check.digest != Guard(guard.settings, b"j" * 32, slow).digest("hello")
