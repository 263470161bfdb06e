"""The OpenAI API as the demo upstream speaks it: chat completions, responses, embeddings, models.

Shapes follow the OpenAI API reference (and the `openai` SDK's types): streams are `data:` events
ending with `data: [DONE]` for chat completions, and typed events with a `sequence_number` for
responses.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from clearance.demo.upstream.outcome import (
    Events,
    Json,
    Outcome,
    require_list,
    require_model,
    sse,
)
from clearance.demo.upstream.reply import (
    Reply,
    approx_tokens,
    compose,
    embedding,
    prompt_chars,
)
from clearance.errors import InvalidInput

FINGERPRINT = "fp_clearance_demo"
DEFAULT_DIMENSIONS = 64
MAX_DIMENSIONS = 4096
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def error(status: int, message: str) -> dict[str, object]:
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def models(ids: Sequence[str], created: int) -> Json:
    data = [
        {"id": m, "object": "model", "created": created, "owned_by": "clearance-demo"} for m in ids
    ]
    return Json({"object": "list", "data": data})


# --- chat completions ------------------------------------------------------------------------


def chat(body: Mapping[str, object], rid: str, created: int) -> Outcome:
    model = require_model(body)
    messages = require_list(body, "messages")
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    reply = compose(model, prompt_chars({"messages": messages}, ("messages",)), limit)
    finish = "length" if reply.truncated else "stop"
    usage = _usage(reply)
    if not body.get("stream"):
        choice = {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": reply.text,
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": finish,
        }
        return Json(_chat_envelope(rid, created, model, "chat.completion", [choice], usage))
    options = body.get("stream_options")
    with_usage = isinstance(options, dict) and options.get("include_usage") is True

    def chunk(delta: dict[str, object], finish_reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        env = _chat_envelope(rid, created, model, "chat.completion.chunk", [choice], None)
        if not with_usage:
            del env["usage"]
        return sse(env)

    frames = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
    frames += [chunk({"content": piece}, None) for piece in reply.pieces]
    last = chunk({}, finish)
    if with_usage:  # a final chunk with no choices carries the usage
        last += sse(_chat_envelope(rid, created, model, "chat.completion.chunk", [], usage))
    frames.append(last + sse(b"[DONE]"))
    return Events(tuple(frames))


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def _chat_envelope(
    rid: str, created: int, model: str, obj: str, choices: list[Any], usage: dict[str, int] | None
) -> dict[str, object]:
    return {
        "id": f"chatcmpl-{rid}",
        "object": obj,
        "created": created,
        "model": model,
        "choices": choices,
        "usage": usage,
        "system_fingerprint": FINGERPRINT,
        "service_tier": "default",
    }


# --- responses -------------------------------------------------------------------------------


def responses(body: Mapping[str, object], rid: str, created: int) -> Outcome:
    model = require_model(body)
    if body.get("input") in (None, "", []):
        raise InvalidInput("input: required")
    reply = compose(
        model, prompt_chars(body, ("instructions", "input")), body.get("max_output_tokens")
    )
    done = _response(body, rid, created, reply, "incomplete" if reply.truncated else "completed")
    if not body.get("stream"):
        return Json(done)
    item_id = f"msg_{rid}"
    seq = iter(range(1_000_000))

    def event(kind: str, **fields: object) -> bytes:
        return sse({"type": kind, "sequence_number": next(seq), **fields}, event=kind)

    started = _response(body, rid, created, None, "in_progress")
    part: dict[str, object] = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    at = {"output_index": 0, "item_id": item_id, "content_index": 0}
    opening = (
        event("response.created", response=started)
        + event("response.in_progress", response=started)
        + event("response.output_item.added", output_index=0, item=_message(item_id, None))
        + event("response.content_part.added", part=part, **at)
    )
    deltas = [event("response.output_text.delta", delta=p, logprobs=[], **at) for p in reply.pieces]
    closing = (
        event("response.output_text.done", text=reply.text, logprobs=[], **at)
        + event("response.content_part.done", part={**part, "text": reply.text}, **at)
        + event("response.output_item.done", output_index=0, item=_message(item_id, reply.text))
        + event(f"response.{done['status']}", response=done)
    )
    return Events((opening, *deltas, closing))


def _message(item_id: str, text: str | None) -> dict[str, object]:
    content = (
        []
        if text is None
        else [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    )
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "content": content,
        "status": "in_progress" if text is None else "completed",
    }


def _response(
    body: Mapping[str, object], rid: str, created: int, reply: Reply | None, status: str
) -> dict[str, object]:
    out: dict[str, object] = {
        "id": f"resp_{rid}",
        "object": "response",
        "created_at": created,
        "status": status,
        "model": body["model"],
        "output": [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": {},
        "error": None,
        "incomplete_details": None,
        "usage": None,
        "text": {"format": {"type": "text"}},
    }
    if reply is not None:
        out["output"] = [_message(f"msg_{rid}", reply.text)]
        out["usage"] = {
            "input_tokens": reply.prompt_tokens,
            "output_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        }
        if reply.truncated:
            out["incomplete_details"] = {"reason": "max_output_tokens"}
    return out


# --- embeddings ------------------------------------------------------------------------------


def embeddings(body: Mapping[str, object], rid: str, created: int) -> Outcome:
    model = require_model(body)
    inputs = _embedding_inputs(body.get("input"))
    dims = body.get("dimensions", DEFAULT_DIMENSIONS)
    if not isinstance(dims, int) or not 1 <= dims <= MAX_DIMENSIONS:
        raise InvalidInput(f"dimensions: an integer from 1 to {MAX_DIMENSIONS}")
    fmt = body.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise InvalidInput("encoding_format: 'float' or 'base64'")
    data = []
    for i, text in enumerate(inputs):
        packed, floats = embedding(text, dims)
        # base64 of the little-endian float32 array, which the openai SDK decodes itself.
        vector: object = base64.b64encode(packed).decode() if fmt == "base64" else floats
        data.append({"object": "embedding", "index": i, "embedding": vector})
    tokens = sum(approx_tokens(len(t)) for t in inputs)
    return Json(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def _embedding_inputs(value: object) -> list[str]:
    """A string, a list of strings, a token array, or a list of token arrays."""
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, int) for v in value):
            return [orjson.dumps(value).decode()]
        if all(isinstance(v, str) or (isinstance(v, list) and v) for v in value):
            return [v if isinstance(v, str) else orjson.dumps(v).decode() for v in value]
    raise InvalidInput("input: a non-empty string, list of strings, or token array")
