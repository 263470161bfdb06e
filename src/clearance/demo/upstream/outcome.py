"""What a demo endpoint answers, before it is put on the wire: a JSON body or an event stream."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from clearance.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Json:
    body: object
    status: int = 200


@dataclass(frozen=True, slots=True)
class Events:
    """A text/event-stream; each frame is written in one piece, with the delay between frames."""

    frames: tuple[bytes, ...]


Outcome = Json | Events


def sse(data: object, event: str | None = None) -> bytes:
    """One server-sent event (WHATWG HTML §9.2.6): optional `event:` line, one `data:` line."""
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + payload + b"\n\n"


def require_model(body: Mapping[str, object]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidInput("you must provide a model parameter")
    return model


def require_list(body: Mapping[str, object], field: str) -> list[object]:
    value = body.get(field)
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"{field}: a non-empty list is required")
    return value
