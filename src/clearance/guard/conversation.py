"""The text a classifier is shown: the whole conversation the upstream will see, and the
completion as it streams.

A stateless API lets a client write the whole history itself, so an attack can sit in an earlier
"user" or "assistant" turn, a system prompt, a tool result or a tool's description: the prompt check
reads every one of them, labelled by role, not just the last message. Text longer than the
classifier's window is checked in overlapping windows rather than cut.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

# Routes whose answers are generated text, by API path: the ones the guard checks.
GENERATIVE = frozenset({"/v1/chat/completions", "/v1/responses", "/v1/messages"})
OVERLAP = 400  # characters two neighbouring windows share, so a phrase across a cut is seen


def _texts(content: Any) -> Iterator[str]:
    """Every piece of text in a content value of either API: a string, a list of parts or
    blocks (text, input_text, output_text, tool_result content, tool_use/function arguments)."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            yield from _texts(part)
    elif isinstance(content, Mapping):
        for key in ("text", "content", "input", "arguments", "output", "description"):
            value = content.get(key)
            if isinstance(value, str):
                yield value
            elif isinstance(value, list):
                yield from _texts(value)
            elif isinstance(value, Mapping):
                yield orjson.dumps(value).decode()
        for call in content.get("tool_calls") or ():
            if isinstance(call, Mapping):
                yield from _texts(call.get("function"))


def _line(role: Any, content: Any) -> str:
    text = "\n".join(t for t in _texts(content) if t)
    if not text:
        return ""
    return f"{str(role).capitalize() if isinstance(role, str) else 'User'}: {text}"


def prompt_text(path: str, payload: Mapping[str, Any]) -> str:
    """The conversation of one request, as a role-labelled transcript."""
    lines: list[str] = []
    if path == "/v1/messages":  # Anthropic: system, then messages
        lines.append(_line("system", payload.get("system")))
    elif path == "/v1/responses":
        lines.append(_line("system", payload.get("instructions")))
    for tool in payload.get("tools") or ():
        if isinstance(tool, Mapping):  # a tool's description is text the model reads
            lines.append(_line("tool", tool.get("function", tool)))
    messages = payload.get("input") if path == "/v1/responses" else payload.get("messages")
    if isinstance(messages, str):
        lines.append(_line("user", messages))
    elif isinstance(messages, list):
        for m in messages:
            if isinstance(m, Mapping):
                lines.append(
                    _line(m.get("role", "user"), m if "content" not in m else m["content"])
                )
                if m.get("tool_calls"):
                    lines.append(_line(m.get("role", "assistant"), {"tool_calls": m["tool_calls"]}))
            else:
                lines.append(_line("user", m))
    return "\n\n".join(line for line in lines if line)


def windows(text: str, size: int, overlap: int = OVERLAP) -> list[str]:
    """`text` in pieces of at most `size` characters, neighbours sharing `overlap`."""
    if len(text) <= size:
        return [text]
    step = max(size - overlap, 1)
    return [text[i : i + size] for i in range(0, len(text) - overlap, step)]


def completion_text(path: str, body: bytes) -> str | None:
    """The generated text of a whole (non-streamed) answer; None when it cannot be read."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, Mapping):
        return None
    if path == "/v1/messages":
        return "\n".join(_texts(doc.get("content")))
    if path == "/v1/responses":
        return "\n".join(_texts(doc.get("output")))
    choices = doc.get("choices")
    if not isinstance(choices, list):
        return None
    return "\n".join(t for c in choices if isinstance(c, Mapping) for t in _texts(c.get("message")))


def withheld(path: str, body: bytes) -> bytes:
    """A whole answer with its generated content removed, ended the way each API ends an answer
    its provider filtered: OpenAI `finish_reason: "content_filter"`, Anthropic
    `stop_reason: "refusal"`, Responses `status: "incomplete"` for `content_filter`."""
    doc = orjson.loads(body)
    if path == "/v1/messages":
        doc["content"] = []
        doc["stop_reason"] = "refusal"
        doc["stop_sequence"] = None
    elif path == "/v1/responses":
        doc["output"] = []
        doc["status"] = "incomplete"
        doc["incomplete_details"] = {"reason": "content_filter"}
        doc.pop("output_text", None)
    else:
        for choice in doc.get("choices") or ():
            message = choice.get("message") or {}
            choice["message"] = {**message, "content": None, "tool_calls": None,
                                 "refusal": REFUSAL}  # fmt: skip
            choice["finish_reason"] = "content_filter"
    return orjson.dumps(doc)


REFUSAL = "This response was stopped under the provider's usage policy for this model."
