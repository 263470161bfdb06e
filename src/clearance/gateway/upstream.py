"""The upstream client: one pool of keep-alive connections per worker (clearance.net.h1); the
upstream's own credentials.

Chosen by measurement (bench/passthrough.py --client, bench/gateway.py): httpx's AsyncClient was
about 14x slower than aiohttp under concurrency, and aiohttp's ClientSession cost a bare
pass-through about 215 µs of CPU a request where clearance.net.h1 costs about 117 µs.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

from clearance.catalog.models import Upstream, UpstreamKind
from clearance.config import GatewaySettings
from clearance.net import h1

# Request headers a client may pass through to the provider; everything else (its key, cookies,
# identity headers such as x-user-id) is dropped.
PASS_REQUEST = (b"content-type", b"accept", b"anthropic-version", b"anthropic-beta", b"openai-beta")
# Response headers worth returning; hop-by-hop and the provider's internals are not.
PASS_RESPONSE = frozenset(
    {b"content-type", b"cache-control", b"x-request-id", b"request-id", b"openai-processing-ms"}
)


def new_session(settings: GatewaySettings) -> h1.Client:
    """No cookie jar (one client serves every user: a cookie one reply sets must never ride on
    another user's request), no user-agent of the library's, no compression (the relay reads
    usage from the answer and forwards bytes without a content-encoding)."""
    return h1.Client(
        connect_timeout=settings.upstream_connect_timeout,
        read_timeout=settings.upstream_read_timeout,
    )


def url_for(upstream: Upstream, path: str) -> str:
    """Each SDK's base-URL convention: OpenAI bases end in /v1, Anthropic's do not. The client's
    path (/v1/...) is appended to the upstream's root, whichever API the upstream mainly speaks
    (several providers serve both, e.g. Anthropic's OpenAI-compatible /v1/chat/completions)."""
    base = upstream.base_url.rstrip("/")
    root = base[: -len("/v1")] if base.endswith("/v1") else base
    return root + path


def request_headers(upstream: Upstream, client: Mapping[bytes, bytes]) -> dict[str, str]:
    out = {k.decode("latin-1"): client[k].decode("latin-1") for k in PASS_REQUEST if k in client}
    out.setdefault("content-type", "application/json")
    out["user-agent"] = "clearance-gateway"
    for name, value in credentials(upstream):
        out.setdefault(name, value)
    return out


@functools.lru_cache(maxsize=1024)
def credentials(upstream: Upstream) -> tuple[tuple[str, str], ...]:
    """The provider's own headers, the key read from the environment once per upstream (the
    process environment does not change under it), not on every request."""
    secret = os.environ.get(upstream.api_key_env, "") if upstream.api_key_env else ""
    if upstream.kind is UpstreamKind.ANTHROPIC:
        version = (("anthropic-version", "2023-06-01"),)
        return ((("x-api-key", secret),) if secret else ()) + version
    return (("authorization", f"Bearer {secret}"),) if secret else ()


def response_headers(resp: h1.Response) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in resp.headers if k in PASS_RESPONSE]
