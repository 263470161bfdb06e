"""A LiteLLM proxy with Clearance as its decision point (docs/integrations.md).

Two hooks, both named in the LiteLLM proxy's config:

    general_settings:
      custom_auth: clearance.integrations.litellm.user_api_key_auth
    litellm_settings:
      callbacks: clearance.integrations.litellm.proxy_handler_instance

`user_api_key_auth(request, api_key)` (LiteLLM's `custom_auth`) asks Clearance over HTTP
(`POST {CLEARANCE_URL}/authz/check`, the client's key and the whole body, the original path in
`X-Forwarded-Uri`), so the decision is Clearance's and its entry is durable before LiteLLM calls
a model. A refusal is raised as LiteLLM's `ProxyException` with Clearance's status (451, 401,
...), its message and type, and its `Link`, `Retry-After` and `Clearance-Audit-Index` headers,
which LiteLLM's exception handler sends as they are; Clearance unreachable is a 503 (LiteLLM
would answer any other exception from custom_auth with a 401). An allowed request's decision
(the served model, the decision, the keyed pseudonym, the audit index) rides on the returned
key object (a `UserAPIKeyAuth`: LiteLLM ignores any other answer when litellm-enterprise is
installed, as `litellm[proxy]` installs it) in `metadata["clearance"]`, its `user_id` the
pseudonym, never the client's key.

`proxy_handler_instance` (a `CustomLogger`) rewrites `data["model"]` in `async_pre_call_hook`
to the model Clearance serves (a fallback's, when Clearance chose one), and refuses a request
whose model is neither the one checked nor the one served. LiteLLM's answer still names the
model the client asked for in its `model` field (LiteLLM stamps the client's name on it), so
`async_post_call_response_headers_hook` tells the client the served model, the decision and the
audit index in `x-clearance-model-served`, `x-clearance-decision` and `clearance-audit-index`.

LiteLLM cannot be made to keep our decision once it routes: its own `fallbacks`,
`context_window_fallbacks`, `content_policy_fallbacks` and retries on another deployment choose a
model after the hook ran. The models Clearance controls must have none of them, and each
`model_name` must map to deployments of that model only.

Clearance does not depend on LiteLLM: nothing here imports it until LiteLLM calls in.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

import httpx

CLEARANCE_URL = "CLEARANCE_URL"  # the environment variable naming Clearance's base URL
TIMEOUT = "CLEARANCE_TIMEOUT"  # seconds, 5 by default
DECISION = (
    "x-clearance-model-served",
    "x-clearance-upstream-model",
    "x-clearance-decision",
    "x-clearance-subject",
    "x-clearance-audit-index",
)
REFUSAL_HEADERS = ("link", "retry-after", "clearance-audit-index")
# Headers of the client's request Clearance reads (the credential is passed apart).
FORWARDED = ("anthropic-version", "user-agent", "x-forwarded-for")

_client: httpx.AsyncClient | None = None


def _http() -> httpx.AsyncClient:
    global _client
    if _client is None:
        base = os.environ.get(CLEARANCE_URL, "").rstrip("/")
        if not base:
            raise RuntimeError(f"set {CLEARANCE_URL} to Clearance's base URL")
        _client = httpx.AsyncClient(
            base_url=base, timeout=float(os.environ.get(TIMEOUT, "5")), trust_env=False
        )
    return _client


async def user_api_key_auth(request: Any, api_key: str) -> Any:
    """LiteLLM's `custom_auth`: Clearance's decision for this request, or its refusal raised."""
    body: bytes = await request.body()
    path = str(request.url.path)
    headers = {
        "authorization": f"Bearer {api_key}",
        "x-forwarded-method": str(request.method),
        "x-forwarded-uri": path,
        "content-type": "application/json",
    }
    for name in FORWARDED:
        value = request.headers.get(name)
        if value:
            headers[name] = value
    try:
        answer = await _http().post("/authz/check", content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise _proxy_exception(
            503, f"the decision service is unavailable ({type(exc).__name__})", "api_error", {}
        ) from exc
    if answer.status_code != 200:
        raise _refusal(answer)
    decision = {name: answer.headers.get(name, "") for name in DECISION}
    if not decision["x-clearance-model-served"]:
        raise _proxy_exception(503, "the decision service named no model", "api_error", {})
    return _key(
        user_id=decision["x-clearance-subject"],
        metadata={"clearance": {**decision, "model-requested": _model(body)}},
    )


def _key(**fields: Any) -> Any:
    """LiteLLM's UserAPIKeyAuth (with litellm-enterprise installed, as `litellm[proxy]` does,
    anything else custom_auth returns is ignored and LiteLLM's own key check runs instead)."""
    try:
        key_type = importlib.import_module("litellm.proxy._types").UserAPIKeyAuth
    except ImportError:  # not inside LiteLLM
        return fields
    return key_type(**fields)


async def pre_call(user_api_key_dict: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The request as LiteLLM routes it: the model Clearance serves, nothing else."""
    decision = _decision(user_api_key_dict)
    if decision is None:
        raise _proxy_exception(
            403, "no Clearance decision for this request: set custom_auth", "auth_error", {}
        )
    served = decision["x-clearance-model-served"]
    if data.get("model") not in (decision.get("model-requested"), served):
        raise _proxy_exception(
            403, "the request's model is not the one Clearance checked", "auth_error", {}
        )
    data["model"] = served
    return data


def response_headers(user_api_key_dict: Any) -> dict[str, str]:
    """What the client is told of the decision: the model served (LiteLLM answers with the model
    the client asked for in the body's `model`), the decision and its audit index."""
    decision = _decision(user_api_key_dict)
    if decision is None:
        return {}
    return {
        "x-clearance-model-served": decision["x-clearance-model-served"],
        "x-clearance-decision": decision["x-clearance-decision"],
        "clearance-audit-index": decision["x-clearance-audit-index"],
    }


def _decision(user_api_key_dict: Any) -> dict[str, str] | None:
    metadata = getattr(user_api_key_dict, "metadata", None) or {}
    decision = metadata.get("clearance") if isinstance(metadata, dict) else None
    return decision if isinstance(decision, dict) else None


def _model(body: bytes) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        return ""
    model = parsed.get("model") if isinstance(parsed, dict) else None
    return model if isinstance(model, str) else ""


def _refusal(answer: httpx.Response) -> Exception:
    """Clearance's refusal as the exception LiteLLM answers with as it is."""
    try:
        error = answer.json().get("error", {})
    except ValueError:
        error = {}
    if not isinstance(error, dict):
        error = {}
    message = str(error.get("message") or answer.text or "refused by Clearance")
    kind = str(error.get("type") or "invalid_request_error")
    headers = {name: answer.headers[name] for name in REFUSAL_HEADERS if name in answer.headers}
    return _proxy_exception(answer.status_code, message, kind, headers, error.get("code"))


class Refusal(Exception):
    """A refusal where LiteLLM is not installed (a test, a caller of its own)."""

    def __init__(self, status: int, message: str, kind: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.status, self.kind, self.headers = status, kind, headers


def _proxy_exception(
    status: int, message: str, kind: str, headers: dict[str, str], code: object = None
) -> Exception:
    try:
        proxy_exception = importlib.import_module("litellm.proxy._types").ProxyException
    except ImportError:  # not inside LiteLLM
        return Refusal(status, message, kind, headers)
    return proxy_exception(  # type: ignore[no-any-return]
        message=message,
        type=kind,
        param=None,
        code=status,
        headers=headers,
        provider_specific_fields={"clearance_code": code} if code else None,
    )


def _handler() -> Any:
    custom_logger: Any = importlib.import_module("litellm.integrations.custom_logger").CustomLogger

    class ClearanceHook(custom_logger):  # type: ignore[misc]
        async def async_pre_call_hook(
            self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: Any
        ) -> dict[str, Any]:
            return await pre_call(user_api_key_dict, data)

        async def async_post_call_response_headers_hook(
            self, data: dict[str, Any], user_api_key_dict: Any, response: Any, *args: Any,
            **kwargs: Any,
        ) -> dict[str, str] | None:  # fmt: skip
            return response_headers(user_api_key_dict) or None

    return ClearanceHook()


def __getattr__(name: str) -> Any:
    """`proxy_handler_instance`, built on first use (it subclasses LiteLLM's CustomLogger)."""
    if name == "proxy_handler_instance":
        instance = _handler()
        globals()[name] = instance
        return instance
    raise AttributeError(name)
