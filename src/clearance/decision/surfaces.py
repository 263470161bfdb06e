"""The two API surfaces: which paths exist, and errors in the shape each SDK parses.

OpenAI SDKs read `{"error": {"message", "type", "code", "param"}}`; Anthropic SDKs read
`{"type": "error", "error": {"type", "message"}}`. A client must never get an error body its SDK
cannot turn into a typed exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import orjson

from clearance.audit import entries


class Surface(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"

    @property
    def logged(self) -> entries.Surface:
        """The same name, as the audit entry schema spells it."""
        return "anthropic" if self is Surface.ANTHROPIC else "openai"


@dataclass(frozen=True, slots=True)
class Route:
    surface: Surface
    path: str
    # Where the verified person's pseudonym goes upstream, so abuse is traced to one person and
    # not the provider account (OpenAI `safety_identifier`; Anthropic `metadata.user_id`).
    pseudonym_field: str | None = None


ROUTES: dict[str, Route] = {
    "/v1/chat/completions": Route(Surface.OPENAI, "/v1/chat/completions", "safety_identifier"),
    "/v1/responses": Route(Surface.OPENAI, "/v1/responses", "safety_identifier"),
    "/v1/embeddings": Route(Surface.OPENAI, "/v1/embeddings"),
    "/v1/messages": Route(Surface.ANTHROPIC, "/v1/messages", "metadata.user_id"),
    "/v1/messages/count_tokens": Route(Surface.ANTHROPIC, "/v1/messages/count_tokens"),
}

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    451: "unavailable_for_legal_reasons",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    451: "permission_error",
    529: "overloaded_error",
}


def error_body(surface: Surface, status: int, message: str, code: str) -> bytes:
    if surface is Surface.ANTHROPIC:
        etype = _ANTHROPIC_TYPES.get(status, "api_error")
        return orjson.dumps({"type": "error", "error": {"type": etype, "message": message}})
    etype = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return orjson.dumps({"error": {"message": message, "type": etype, "code": code, "param": None}})


def surface_for(path: str, headers: dict[bytes, bytes]) -> Surface:
    route = ROUTES.get(path)
    if route is not None:
        return route.surface
    # GET /v1/models is shared: the Anthropic SDK always sends `anthropic-version`.
    return Surface.ANTHROPIC if b"anthropic-version" in headers else Surface.OPENAI
