"""The Anthropic Messages API as the demo upstream speaks it: messages, count_tokens, models.

Streams follow Anthropic's documented event flow: message_start, content_block_start, ping,
content_block_delta..., content_block_stop, message_delta, message_stop, each as an `event:` line
and a `data:` line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from clearance.demo.upstream.outcome import (
    Events,
    Json,
    Outcome,
    require_list,
    require_model,
    sse,
)
from clearance.demo.upstream.reply import compose, prompt_chars
from clearance.errors import InvalidInput

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def error(status: int, message: str, rid: str) -> dict[str, object]:
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": f"req_{rid}",
    }


def models(ids: Sequence[str], created: int) -> Json:
    stamp = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = [
        {"type": "model", "id": m, "display_name": f"{m} (Clearance demo)", "created_at": stamp}
        for m in ids
    ]
    return Json(
        {
            "data": data,
            "has_more": False,
            "first_id": ids[0] if ids else None,
            "last_id": ids[-1] if ids else None,
        }
    )


def _prompt(body: Mapping[str, object]) -> tuple[str, int]:
    model = require_model(body)
    messages = require_list(body, "messages")
    return model, prompt_chars(
        {"system": body.get("system"), "messages": messages}, ("system", "messages")
    )


def count_tokens(body: Mapping[str, object], rid: str, created: int) -> Outcome:
    _, chars = _prompt(body)
    return Json({"input_tokens": compose("", chars).prompt_tokens})


def messages(body: Mapping[str, object], rid: str, created: int) -> Outcome:
    model, chars = _prompt(body)
    limit = body.get("max_tokens")
    if not isinstance(limit, int) or limit < 1:
        raise InvalidInput("max_tokens: a positive integer is required")
    reply = compose(model, chars, limit)
    stop = "max_tokens" if reply.truncated else "end_turn"
    usage = {
        "input_tokens": reply.prompt_tokens,
        "output_tokens": reply.completion_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    message: dict[str, object] = {
        "id": f"msg_{rid}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": reply.text}],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }
    if not body.get("stream"):
        return Json(message)

    def event(kind: str, **fields: object) -> bytes:
        return sse({"type": kind, **fields}, event=kind)

    started = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**usage, "output_tokens": 1},
    }
    opening = (
        event("message_start", message=started)
        + event("content_block_start", index=0, content_block={"type": "text", "text": ""})
        + event("ping")
    )
    deltas = [
        event("content_block_delta", index=0, delta={"type": "text_delta", "text": p})
        for p in reply.pieces
    ]
    closing = (
        event("content_block_stop", index=0)
        + event(
            "message_delta",
            delta={"stop_reason": stop, "stop_sequence": None},
            usage={"output_tokens": reply.completion_tokens},
        )
        + event("message_stop")
    )
    return Events((opening, *deltas, closing))
