"""The request body: parsed once for what the decision needs (`model`, `stream`), and the copy
that goes upstream (the served model's upstream name, the verified person's pseudonym)."""

from __future__ import annotations

import hashlib

import orjson

from clearance.decision.surfaces import Route
from clearance.errors import InvalidInput


def unknown_model(model: str) -> str:
    return "unknown:sha256:" + hashlib.sha256(model.encode("utf-8", "replace")).hexdigest()[:16]


def parse_payload(body: bytes) -> tuple[dict[str, object], str]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"malformed JSON body: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidInput("the request body must be a JSON object")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidInput("the request body must name a `model`")
    return payload, model


def rewrite(payload: dict[str, object], model: str, route: Route, pseudonym: str) -> bytes:
    """The body to send upstream: the served model's upstream name, and the person's pseudonym."""
    out = dict(payload)
    out["model"] = model
    if route.pseudonym_field == "safety_identifier":
        out["safety_identifier"] = pseudonym
        out.pop("user", None)  # never pass a client-chosen identity upstream
    elif route.pseudonym_field == "metadata.user_id":
        meta = out.get("metadata")
        out["metadata"] = {**(meta if isinstance(meta, dict) else {}), "user_id": pseudonym}
    # orjson's bytes keep its whole growth buffer (4 KiB for a 100-byte body, 1 MiB for a 64 KiB
    # one; docs/gateway.md#resources), and aiohttp holds the body until the upstream reply ends:
    # for a stream, minutes. One memcpy makes it exactly as long as it is.
    return bytes(memoryview(orjson.dumps(out)))
