"""Hostile input over HTTP: schemathesis against a running gateway (issue 7, item 4).

0 server errors, 0 responses that contradict the OpenAPI document the gateway serves.
"""

from __future__ import annotations

import httpx
import jsonschema_rs
import orjson
import pytest

from clearance.decision.surfaces import Surface, error_body
from clearance.openapi import openapi_document
from clearance.store import connect
from tests.security.api_fuzz import admin_secrets, fuzz_gateway, operations
from tests.security.conftest import Running

EXAMPLES = 25  # per operation and database; bench/fuzz.py runs many more
ADMIN_OPERATIONS = {
    ("get", "/whoami"),
    ("get", "/models"),
    ("post", "/models/{model}/suspend"),
    ("post", "/models/{model}/resume"),
    ("post", "/users/lookup"),
    ("get", "/users/{subject}"),
    ("post", "/users/{subject}/keys/{key}/revoke"),
    ("post", "/users/{subject}/screening/resolve"),
    ("get", "/review"),
    ("get", "/review/{case}"),
    ("post", "/review/{case}/decide"),
    # the catalog (admin/catalog_routes.py)
    ("get", "/upstreams"),
    ("post", "/upstreams/{upstream}/update"),
    ("post", "/upstreams/{upstream}/remove"),
    ("post", "/models/{model}/update"),
    ("post", "/models/{model}/reclassify"),
    ("post", "/models/{model}/retire"),
    ("post", "/models/{model}/restore"),
    # people, orgs, keys, licences (admin/principal_routes.py)
    ("get", "/users"),
    ("post", "/users/search"),
    ("post", "/users/{subject}/suspend"),
    ("post", "/users/{subject}/reinstate"),
    ("get", "/orgs"),
    ("get", "/orgs/{org}"),
    ("get", "/orgs/{org}/members"),
    ("post", "/orgs/{org}/update"),
    ("get", "/keys"),
    ("get", "/licences"),
    ("get", "/licences/{licence}"),
    ("post", "/licences/{licence}/revoke"),
    ("post", "/licences/{licence}/expire"),
    ("post", "/licences/{licence}/renew"),
    # the misuse guard's review queue (admin/guard_routes.py)
    ("get", "/guard/cases"),
    ("get", "/guard/cases/{case}"),
    ("post", "/guard/cases/{case}/clear"),
    ("post", "/guard/cases/{case}/confirm"),
    ("get", "/users/{subject}/guard-flags"),
}


def test_document_is_valid_openapi_31_and_covers_every_json_api() -> None:
    from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

    document = openapi_document()
    assert list(OPENAPI_31_VALIDATOR.iter_errors(document)) == []
    assert {(op.method, op.path) for op in operations()} == {
        ("post", "/v1/chat/completions"),
        ("post", "/v1/responses"),
        ("post", "/v1/embeddings"),
        ("get", "/v1/models"),
        ("post", "/v1/messages"),
        ("post", "/v1/messages/count_tokens"),
        ("get", "/audit/checkpoint"),
        ("get", "/audit/entries/{index}"),
        ("get", "/audit/proof/inclusion"),
        ("get", "/audit/proof/consistency"),
        ("get", "/audit/schema"),
        ("get", "/audit/schema/{version}"),
        ("get", "/healthz"),
        *((method, "/admin/api" + path) for method, path in ADMIN_OPERATIONS),
    }


@pytest.mark.parametrize("surface", list(Surface))
def test_each_surface_error_body_matches_its_own_schema_only(surface: Surface) -> None:
    """The bodies `surfaces.error_body` builds are told apart by the document's schemas."""
    components = openapi_document()["components"]

    def valid(name: str, body: bytes) -> bool:
        schema = {"$ref": f"#/components/schemas/{name}", "components": components}
        return bool(jsonschema_rs.validator_for(schema).is_valid(orjson.loads(body)))

    own, other = ("OpenAIError", "AnthropicError")[:: 1 if surface is Surface.OPENAI else -1]
    for status in (400, 401, 404, 408, 413, 451, 502, 503, 504):
        body = error_body(surface, status, "a message", "a_code")
        assert valid(own, body) and not valid(other, body), (status, body)


def test_gateway_serves_its_document(gateway: Running) -> None:
    served = httpx.get(f"{gateway.url}/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == openapi_document()


def test_schemathesis_finds_no_server_error_and_no_schema_violation(gateway: Running) -> None:
    keys = [gateway.key("alice"), gateway.key("sven"), gateway.strict_key("nina")]
    engine = connect(gateway.settings.database_url)
    try:
        admin = admin_secrets(engine)
    finally:
        engine.dispose()
    report = fuzz_gateway(gateway.url, keys, examples=EXAMPLES, admin=admin)
    assert report.failures == {}, "\n\n".join(f"{k}:\n{v}" for k, v in report.failures.items())
    # The run reached the interesting answers, not only 400s: served, denied, refused.
    assert report.requests >= (13 + len(ADMIN_OPERATIONS)) * EXAMPLES // 2
    assert {200, 451} <= set(report.statuses), report.statuses
