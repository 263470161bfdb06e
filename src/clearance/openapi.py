"""The OpenAPI 3.1 description of the JSON APIs Clearance serves (GET /openapi.json).

It describes what the code does, not what the providers' full APIs allow: request bodies are as
loose as the gateway itself (it reads `model` and `stream`, and forwards the rest), and every
status the gateway can answer is listed with the error body of the caller's SDK:

- the OpenAI surface (`/v1/chat/completions`, `/v1/responses`, `/v1/embeddings`, `/v1/models`)
  answers errors as `{"error": {"message", "type", "code", "param"}}`;
- the Anthropic surface (`/v1/messages`, `/v1/messages/count_tokens`, and `/v1/models` when the
  `anthropic-version` header is sent) as `{"type": "error", "error": {"type", "message"}}`;
- the audit API (C2SP tlog-checkpoint, RFC 9162 proofs) and the operator API (`/admin/api`,
  admin token) as `{"error": {"code", "message"}}`.

A refusal by policy is HTTP 451 (RFC 7725) with a `Link: <...>; rel="blocked-by"` header. A
provider's own 4xx is passed through, marked with `clearance-upstream-status`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from clearance.admin.openapi import admin_paths, admin_schemas

Schema = dict[str, Any]

OPENAPI_VERSION = "3.1.0"
_JSON = "application/json"
_SSE = "text/event-stream"
_DIGITS = {"type": "string", "pattern": "^[0-9]+$"}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema) -> Schema:
    return {_JSON: {"schema": schema}}


def _header(schema: Schema, description: str, *, required: bool = False) -> Schema:
    return {"description": description, "required": required, "schema": schema}


_AUDIT_INDEX = _header(_DIGITS, "Index of this request's decision in the audit log")
_UPSTREAM_STATUS = _header(_DIGITS, "Present when the model provider itself refused the request")


_NULLABLE_TEXT = {"type": ["string", "null"]}
# Audit indexes and tree sizes: ASCII decimals stored as signed 64-bit integers.
_INDEX = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}


def _schemas() -> dict[str, Schema]:
    return {
        **_error_schemas(),
        **_request_schemas(),
        **_result_schemas(),
        **_listing_schemas(),
        **_stream_schemas(),
        **admin_schemas(),
    }


def _error_schemas() -> dict[str, Schema]:
    """The error body each client parses: its SDK's, or the audit API's own."""
    text = {"type": "string"}
    openai = _object(
        ["message", "type"], message=text, type=text, code=_NULLABLE_TEXT, param=_NULLABLE_TEXT
    )
    return {
        # No top-level `type`: that is what tells an OpenAI body from an Anthropic one, which
        # also has `error.type` and `error.message`.
        "OpenAIError": {**_object(["error"], error=openai), "not": {"required": ["type"]}},
        "AnthropicError": _object(
            ["type", "error"],
            type={"const": "error"},
            error=_object(["type", "message"], type=text, message=text),
        ),
        "AuditError": _object(
            ["error"], error=_object(["code", "message"], code=text, message=text)
        ),
    }


def _object(required: list[str], **properties: Schema) -> Schema:
    return {"type": "object", "required": required, "properties": properties}


def _request_schemas() -> dict[str, Schema]:
    """As loose as the gateway: it reads `model` and `stream`; the provider checks the rest."""
    content = {"type": ["string", "array"]}
    chat_role = {"type": "string", "enum": ["system", "developer", "user", "assistant"]}
    chat = _object(["role"], role=chat_role, content=content)
    anthropic = _object(
        ["role", "content"], role={"type": "string", "enum": ["user", "assistant"]}, content=content
    )
    model = {"type": "string", "minLength": 1, "description": "Model id as the gateway lists it"}
    positive = {"type": "integer", "minimum": 1}
    flag = {"type": "boolean"}
    return {
        "ChatCompletionRequest": _object(
            ["model", "messages"],
            model=model,
            messages={"type": "array", "minItems": 1, "items": chat},
            stream=flag,
            max_tokens=positive,
            max_completion_tokens=positive,
            temperature={"type": "number", "minimum": 0, "maximum": 2},
        ),
        "ResponsesRequest": _object(
            ["model", "input"],
            model=model,
            input=content,
            instructions={"type": "string"},
            stream=flag,
            max_output_tokens=positive,
        ),
        "EmbeddingsRequest": _object(
            ["model", "input"],
            model=model,
            input={"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            dimensions={"type": "integer", "minimum": 1, "maximum": 4096},
            encoding_format={"type": "string", "enum": ["float", "base64"]},
        ),
        "MessagesRequest": _object(
            ["model", "messages", "max_tokens"],
            model=model,
            messages={"type": "array", "minItems": 1, "items": anthropic},
            max_tokens=positive,
            system=content,
            stream=flag,
        ),
        "CountTokensRequest": _object(
            ["model", "messages"],
            model=model,
            messages={"type": "array", "minItems": 1, "items": anthropic},
            system=content,
        ),
    }


def _result_schemas() -> dict[str, Schema]:
    """What providers answer; `model` names the model actually served (fallbacks included)."""
    model = {"type": "string"}
    array = {"type": "array"}
    return {
        "ChatCompletion": _object(
            ["id", "object", "model", "choices"],
            object={"const": "chat.completion"},
            model=model,
            choices=array,
        ),
        "Response": _object(
            ["id", "object", "model", "output"],
            object={"const": "response"},
            model=model,
            output=array,
        ),
        "Embeddings": _object(
            ["object", "data", "model"], object={"const": "list"}, model=model, data=array
        ),
        "Message": _object(
            ["id", "type", "role", "model", "content"],
            type={"const": "message"},
            role={"const": "assistant"},
            model=model,
            content=array,
        ),
        "TokenCount": _object(["input_tokens"], input_tokens={"type": "integer", "minimum": 0}),
    }


def _listing_schemas() -> dict[str, Schema]:
    text = {"type": "string"}
    count = {"type": "integer", "minimum": 0}
    openai_model = _object(["id", "object"], id=text, object={"const": "model"})
    anthropic_model = _object(["type", "id"], type={"const": "model"}, id=text)
    return {
        "OpenAIModelList": _object(
            ["object", "data"],
            object={"const": "list"},
            data={"type": "array", "items": openai_model},
        ),
        "AnthropicModelList": _object(
            ["data", "has_more"],
            data={"type": "array", "items": anthropic_model},
            has_more={"type": "boolean"},
            first_id=_NULLABLE_TEXT,
            last_id=_NULLABLE_TEXT,
        ),
        "Proof": _object(
            ["hashes"],
            index=count,
            size=count,
            first=count,
            second=count,
            hashes={"type": "array", "items": {"type": "string", "contentEncoding": "base64"}},
        ),
        "Health": _object(
            ["status"],
            status={"const": "ok"},
            versions={"type": "object"},
            worker={"type": "integer", "description": "the answering worker's process id"},
            invalidation={
                "enum": ["listen", "poll"],
                "description": "how this worker learns of changes (docs/architecture.md)",
            },
        ),
    }


def _errors(error: str, statuses: dict[str, str], headers: Schema | None = None) -> Schema:
    return {
        status: {"description": text, "headers": headers or {}, "content": _json(_ref(error))}
        for status, text in statuses.items()
    }


def _sse_event(data: Schema) -> Schema:
    """One server-sent event (WHATWG HTML §9.2) as schemathesis reads it: `data` holds JSON."""
    json_data = {"type": "string", "contentMediaType": _JSON, "contentSchema": data}
    return _object(["data"], event={"type": "string"}, id={"type": "string"}, data=json_data)


def _stream_schemas() -> dict[str, Schema]:
    """Streams as each SDK parses them; a failure mid-stream is an error event, then a cut."""
    typed = _object(["type"], type={"type": "string"})
    chunk = _object(["object"], object={"const": "chat.completion.chunk"})
    chat = _sse_event({"anyOf": [chunk, _ref("OpenAIError")]})
    # The OpenAI chat stream ends with the sentinel `data: [DONE]`, which is not JSON.
    chat["properties"]["data"] = {"anyOf": [{"const": "[DONE]"}, chat["properties"]["data"]]}
    return {
        "ChatCompletionEvent": chat,
        "ResponseEvent": _sse_event({"anyOf": [typed, _ref("OpenAIError")]}),
        "MessageEvent": _sse_event(typed),
    }


def _proxied(
    error: str, success: Schema, summary: str, request: str, stream: Schema | None
) -> Schema:
    """A POST the gateway decides on, records, then forwards to the provider."""
    content = _json(success)
    if stream is not None:
        content[_SSE] = {"schema": stream}
    served = {
        "clearance-audit-index": _AUDIT_INDEX,
        "clearance-model-served": _header(
            {"type": "string"}, "The model actually served", required=True
        ),
        "clearance-decision": _header(
            {"type": "string", "enum": ["allow", "fallback"]}, "allow, or fallback", required=True
        ),
    }
    responses: Schema = {
        "200": {"description": "The provider's answer", "headers": served, "content": content},
        **_errors(
            error,
            {
                "400": "Malformed body, no `model`, or a method other than POST",
                "401": "Missing, unknown or revoked API key, or a key sent in the URL",
                "404": "Unknown model",
                "408": "The request body did not arrive in time",
                "413": "Request body over the configured limit",
                "429": "Too many requests with bad keys from this client (Retry-After says when)",
                "502": "The model provider failed or broke the connection",
                "503": "The audit log or the policy is unavailable: fail closed",
                "504": "The model provider did not answer in time",
            },
        ),
        "451": {
            "description": "Denied by policy (RFC 7725); the body names the rule and decision",
            "headers": {
                "clearance-audit-index": {**_AUDIT_INDEX, "required": True},
                "link": _header(
                    {"type": "string", "pattern": 'rel="blocked-by"'},
                    "Where to go next",
                    required=True,
                ),
            },
            "content": _json(_ref(error)),
        },
        "4XX": {
            "description": "The provider's own refusal, passed through",
            "headers": {"clearance-upstream-status": _UPSTREAM_STATUS},
            "content": _json(_ref(error)),
        },
    }
    return {
        "post": {
            "summary": summary,
            "security": [{"bearer": []}, {"apiKey": []}],
            "requestBody": {"required": True, "content": _json(_ref(request))},
            "responses": responses,
        }
    }


def _models_path() -> Schema:
    either = {"oneOf": [_ref("OpenAIError"), _ref("AnthropicError")]}
    return {
        "get": {
            "summary": "The models this key may use right now (Anthropic shape with "
            "`anthropic-version`)",
            "security": [{"bearer": []}, {"apiKey": []}],
            "parameters": [
                {"name": "anthropic-version", "in": "header", "schema": {"type": "string"}}
            ],
            "responses": {
                "200": {
                    "description": "Allowed models",
                    "content": _json(
                        {"oneOf": [_ref("OpenAIModelList"), _ref("AnthropicModelList")]}
                    ),
                },
                "401": {"description": "No valid API key", "content": _json(either)},
                "429": {
                    "description": "Too many requests with bad keys from this client",
                    "content": _json(either),
                },
                "503": {"description": "The policy is unavailable", "content": _json(either)},
            },
        }
    }


def _count(name: str, description: str, *, required: bool) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": _INDEX,
    }


def _audit_get(summary: str, ok: Schema, params: list[Schema], statuses: dict[str, str]) -> Schema:
    return {
        "get": {
            "summary": summary,
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": ok},
                **_errors("AuditError", statuses),
            },
        }
    }


def _audit_paths() -> dict[str, Schema]:
    bad_or_missing = {"400": "Not a valid index or size", "404": "Not in the log (yet)"}
    index = {"name": "index", "in": "path", "required": True, "schema": _INDEX}
    schema_document = {"application/schema+json": {"schema": {"type": "object"}}}
    return {
        "/audit/checkpoint": _audit_get(
            "The latest signed checkpoint (C2SP tlog-checkpoint in a C2SP signed-note)",
            {"text/plain": {"schema": {"type": "string"}}},
            [],
            {"404": "No checkpoint signed yet"},
        ),
        "/audit/entries/{index}": _audit_get(
            "The exact bytes hashed into leaf `index` (RFC 8785 canonical JSON)",
            _json({"type": "object"}),
            [index],
            bad_or_missing,
        ),
        "/audit/proof/inclusion": _audit_get(
            "RFC 9162 §2.1.3 inclusion proof of entry `index` in the tree of `size`",
            _json(_ref("Proof")),
            [
                _count("index", "Leaf index", required=True),
                _count("size", "Tree size (default: latest)", required=False),
            ],
            bad_or_missing,
        ),
        "/audit/proof/consistency": _audit_get(
            "RFC 9162 §2.1.4 consistency proof from tree size `first` to `second`",
            _json(_ref("Proof")),
            [
                _count("first", "Older tree size", required=True),
                _count("second", "Newer tree size (default: latest)", required=False),
            ],
            bad_or_missing,
        ),
        "/audit/schema": _audit_get(
            "The JSON Schema (2020-12) of the entries this release writes",
            schema_document,
            [],
            {},
        ),
        "/audit/schema/{version}": _audit_get(
            "The JSON Schema of entries of one version (an entry's `schema` field; none: 1)",
            schema_document,
            [{"name": "version", "in": "path", "required": True, "schema": _INDEX}],
            {"400": "Not a valid version number", "404": "No such version"},
        ),
    }


def openapi_document() -> Schema:
    """A fresh copy of the document (callers may modify it)."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Clearance gateway", "version": "1"},
        "paths": {
            "/v1/chat/completions": _proxied(
                "OpenAIError",
                _ref("ChatCompletion"),
                "OpenAI chat completion",
                "ChatCompletionRequest",
                _ref("ChatCompletionEvent"),
            ),
            "/v1/responses": _proxied(
                "OpenAIError",
                _ref("Response"),
                "OpenAI response",
                "ResponsesRequest",
                _ref("ResponseEvent"),
            ),
            "/v1/embeddings": _proxied(
                "OpenAIError",
                _ref("Embeddings"),
                "OpenAI embeddings",
                "EmbeddingsRequest",
                None,
            ),
            "/v1/models": _models_path(),
            "/v1/messages": _proxied(
                "AnthropicError",
                _ref("Message"),
                "Anthropic message",
                "MessagesRequest",
                _ref("MessageEvent"),
            ),
            "/v1/messages/count_tokens": _proxied(
                "AnthropicError",
                _ref("TokenCount"),
                "Anthropic token count",
                "CountTokensRequest",
                None,
            ),
            **_audit_paths(),
            **admin_paths(),
            "/healthz": {
                "get": {
                    "summary": "Liveness, with the state versions this worker serves",
                    "responses": {"200": {"description": "OK", "content": _json(_ref("Health"))}},
                }
            },
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
    }


async def openapi_json(_request: Request) -> Response:
    return JSONResponse(openapi_document())
