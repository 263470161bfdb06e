"""A guarded stream: server-sent events forwarded whole, the completion read as it passes, checked
every `stream_check_tokens` tokens or `stream_check_ms` (in the background, beside the stream),
and the terminal events held until every check has answered. A flagged stream ends with a
well-formed terminal event in the SDK's own shape:

- OpenAI chat completions: a chunk with `finish_reason: "content_filter"`, then `data: [DONE]`;
- OpenAI responses: `response.incomplete` with `incomplete_details.reason: "content_filter"`;
- Anthropic messages: `content_block_stop` for an open block, `message_delta` with
  `stop_reason: "refusal"`, then `message_stop`.

Events are forwarded one whole event at a time (never a partial one), so a cut falls between two.
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson

from clearance.guard.conversation import REFUSAL

_BOUNDARY = re.compile(rb"\r?\n\r?\n")
CHARS_PER_TOKEN = 4  # a token is about four characters of English text (OpenAI's rule of thumb)


def _fields(event: bytes) -> tuple[str, Any]:
    """The event's name and its data, parsed (None when absent or not JSON; "[DONE]" as is)."""
    name = ""
    data: list[bytes] = []
    for line in event.splitlines():
        if line.startswith(b"event:"):
            name = line[6:].strip().decode("utf-8", "replace")
        elif line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" "))
    raw = b"\n".join(data)
    if raw == b"[DONE]":
        return name, "[DONE]"
    try:
        return name, orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return name, None


class StreamReader:
    """Splits a stream into whole events, reads the generated text from them, and knows which
    events end the stream (held back until the last check answers)."""

    def __init__(self, path: str, tokens: int, interval_ms: int) -> None:
        self.path = path
        self._buffer = b""
        self.text: list[str] = []  # the completion so far, in pieces
        self.chars = 0
        self.checked = 0  # characters of the completion already sent to a check
        self._every = tokens * CHARS_PER_TOKEN
        self._interval = interval_ms / 1000
        self._last = time.monotonic()
        self.held: list[bytes] = []  # terminal events, sent once every check has answered
        self._open_blocks: set[int] = set()
        self._first: dict[str, Any] = {}  # what a cut event repeats: id, model, created ...
        self._sequence = 0
        self._output_tokens = 0

    def feed(self, chunk: bytes) -> bytes:
        """The whole events in `chunk` (and what was buffered before it) to forward now."""
        self._buffer += chunk
        out: list[bytes] = []
        while True:
            found = _BOUNDARY.search(self._buffer)
            if found is None:
                break
            event = self._buffer[: found.end()]
            self._buffer = self._buffer[found.end() :]
            if self._read(event):
                self.held.append(event)
            else:
                out.append(event)
        return b"".join(out)

    def rest(self) -> bytes:
        """What the upstream sent after its last whole event (nothing, from a well-formed one)."""
        rest, self._buffer = self._buffer, b""
        return rest

    def due(self) -> bool:
        """Whether enough new text arrived for the next check (tokens or time)."""
        new = self.chars - self.checked
        if new <= 0:
            return False
        return new >= self._every or time.monotonic() - self._last >= self._interval

    def take(self) -> tuple[int, str]:
        """The completion so far and where the unchecked part begins; marks it as checked."""
        start = self.checked
        self.checked = self.chars
        self._last = time.monotonic()
        return start, "".join(self.text)

    def _add(self, text: Any) -> None:
        if isinstance(text, str) and text:
            self.text.append(text)
            self.chars += len(text)
            self._output_tokens += 1

    def _read(self, event: bytes) -> bool:
        """Take the text out of one event; True when it is a terminal event."""
        name, data = _fields(event)
        if data == "[DONE]":
            return True
        if not isinstance(data, dict):
            return False
        kind = data.get("type", name)
        if self.path == "/v1/messages":
            if kind == "message_start":
                self._first = data.get("message") or {}
            elif kind == "content_block_start":
                self._open_blocks.add(data.get("index", 0))
                block = data.get("content_block") or {}
                self._add(block.get("text"))
            elif kind == "content_block_delta":
                delta = data.get("delta") or {}
                self._add(delta.get("text") or delta.get("partial_json") or delta.get("thinking"))
            elif kind == "content_block_stop":
                self._open_blocks.discard(data.get("index", 0))
            return kind in ("message_delta", "message_stop")
        if self.path == "/v1/responses":
            self._sequence = max(self._sequence, int(data.get("sequence_number") or 0))
            if kind == "response.created":
                self._first = data.get("response") or {}
            elif kind in ("response.output_text.delta", "response.function_call_arguments.delta"):
                self._add(data.get("delta"))
            return kind in ("response.completed", "response.incomplete", "response.failed")
        # Chat completions: choices[].delta.content (and tool call arguments, refusals).
        if not self._first:
            self._first = {k: data.get(k) for k in ("id", "created", "model") if k in data}
        finished = False
        for choice in data.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or {}
            self._add(delta.get("content"))
            self._add(delta.get("refusal"))
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    self._add((call.get("function") or {}).get("arguments"))
            finished = finished or choice.get("finish_reason") is not None
        return finished

    def cut(self) -> bytes:
        """The events that end this stream as filtered, in the SDK's shape."""
        if self.path == "/v1/messages":
            events = [
                _sse("content_block_stop", {"type": "content_block_stop", "index": i})
                for i in sorted(self._open_blocks)
            ]
            events.append(
                _sse(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "refusal", "stop_sequence": None},
                        "usage": {"output_tokens": self._output_tokens},
                    },
                )
            )
            events.append(_sse("message_stop", {"type": "message_stop"}))
            return b"".join(events)
        if self.path == "/v1/responses":
            response = {
                **self._first,
                "status": "incomplete",
                "incomplete_details": {"reason": "content_filter"},
                "output": [],
            }
            return _sse(
                "response.incomplete",
                {
                    "type": "response.incomplete",
                    "sequence_number": self._sequence + 1,
                    "response": response,
                },
            )
        chunk = {
            "id": self._first.get("id", "chatcmpl-clearance"),
            "object": "chat.completion.chunk",
            "created": self._first.get("created", int(time.time())),
            "model": self._first.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "delta": {"refusal": REFUSAL},
                    "logprobs": None,
                    "finish_reason": "content_filter",
                }
            ],
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\ndata: [DONE]\n\n"


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
