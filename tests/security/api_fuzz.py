"""Schemathesis against a running gateway, driven by the gateway's own OpenAPI document.

Every operation of `clearance.openapi.openapi_document()` gets `examples` generated
requests with a real persona's API key; each response must not be a server error (a deliberate
502/503/504 is listed in the document and allowed) and must match the document: status code,
content type, required headers and body schema. `ignored_auth` also replays each request without
credentials and with a wrong key, which must be refused.

Used by tests/security/test_api_fuzz.py (a short run) and bench/fuzz.py (a long one).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, checks
from schemathesis.core.failures import FailureGroup
from sqlalchemy.engine import Engine

from clearance.admin import tokens
from clearance.app import create_app
from clearance.config import load_settings
from clearance.demo.run import seed
from clearance.demo.upstream import demo_upstream_app
from clearance.net.serving import serve_in_thread
from clearance.openapi import openapi_document
from clearance.principals.service import create_key
from clearance.setup import write_instance
from clearance.store import connect, migrate

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.ignored_auth,
]
# Models a generated body may be pointed at (None: keep the generated string, mostly unknown).
MODELS = (None, "fable-4", "fable-5", "mythos-5")
AUTH_HEADERS = ("authorization", "x-api-key")


@dataclass
class Report:
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def operations() -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_dict(openapi_document())
    return [result.ok() for result in schema.get_all_operations()]


def fuzz_operation(
    operation: schemathesis.APIOperation,
    base_url: str,
    keys: Sequence[str],
    report: Report,
    *,
    examples: int,
    derandomize: bool,
    admin: Sequence[str] = (),
) -> None:
    """Run `examples` generated requests; the first failing one (shrunk) goes in `report`.
    Operator-API operations (`/admin/api`) take their credentials from `admin`, as a bearer."""
    admin_api = operation.path.startswith("/admin/api/")
    if admin_api:
        keys = admin

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=derandomize,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=operation.as_strategy(),
        model=st.sampled_from(MODELS),
        key=st.sampled_from(keys),
        anthropic_style=st.booleans(),
    )
    def run(case: Case, model: str | None, key: str, anthropic_style: bool) -> None:
        if model is not None and isinstance(case.body, dict):
            case.body["model"] = model
        # Credentials are ours, never generated ones beside them (`ignored_auth` probes those).
        for name in [h for h in case.headers or {} if h.lower() in AUTH_HEADERS]:
            del case.headers[name]
        bearer = admin_api or not anthropic_style
        auth = {"authorization": f"Bearer {key}"} if bearer else {"x-api-key": key}
        response = case.call(base_url=base_url, headers=auth, timeout=30)
        report.requests += 1
        report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS, headers=auth)

    try:
        run()
    except (FailureGroup, AssertionError) as exc:
        report.failures[f"{operation.method.upper()} {operation.path}"] = str(exc)


def fuzz_gateway(
    base_url: str,
    keys: Sequence[str],
    *,
    examples: int,
    derandomize: bool = True,
    admin: Sequence[str] = (),
) -> Report:
    """`keys`: API keys to sample from, e.g. a US citizen's (served), a foreign national's
    (fallbacks) and an unverified user's without fallback (451); `admin`: admin tokens for the
    operator API (one with every scope, one with none of the route's, say)."""
    report = Report()
    for operation in operations():
        fuzz_operation(
            operation,
            base_url,
            keys,
            report,
            examples=examples,
            derandomize=derandomize,
            admin=admin,
        )
    return report


def admin_secrets(engine: Engine) -> list[str]:
    """An admin token with every scope and one with only catalog:read (mostly 403s)."""
    with engine.begin() as conn:
        _, every = tokens.create(conn, "fuzz", frozenset(tokens.Scope), created_by="fuzz")
        _, narrow = tokens.create(
            conn, "fuzz-narrow", frozenset({tokens.Scope.CATALOG_READ}), created_by="fuzz"
        )
    return [every, narrow]


def persona_keys(engine: Engine, keys: dict[str, str]) -> list[str]:
    """Alice (US citizen), Sven (Swedish, fallbacks) and Nina (unverified) with fallback off."""
    with engine.begin() as conn:
        _, strict = create_key(conn, "nina@demo.test", name="strict", allow_fallback=False)
    return [keys["alice@demo.test"], keys["sven@demo.test"], strict]


@contextmanager
def demo_gateway(directory: Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """A gateway on SQLite in `directory`, seeded with the demo personas, for bench/fuzz.py
    (the same set-up as the tests' `gateway` fixture)."""
    with serve_in_thread(demo_upstream_app(chunk_delay=0.0), lifespan="off") as upstream:
        write_instance(directory, origin="fuzz.clearance.local/audit")
        settings = load_settings(directory / "clearance.toml", environ={})
        engine = connect(settings.database_url)
        migrate(engine)
        keys = persona_keys(engine, seed(engine, settings, upstream))
        admin = admin_secrets(engine)
        engine.dispose()
        with serve_in_thread(create_app(settings)) as url:
            yield url, keys, admin
