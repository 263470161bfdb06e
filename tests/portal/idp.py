"""A running Clearance configured for operator SSO against the test OpenID Provider
(oidc_issuer.py) and for SCIM provisioning, and the walk of a sign-in over HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from clearance.app import create_app
from clearance.config import load_settings
from clearance.demo.run import seed
from clearance.net.protocol import DeadlineProtocol
from clearance.net.serving import serve_in_thread
from clearance.store import connect, migrate
from tests.gateway.conftest import Running, make_instance
from tests.portal.conftest import Browser
from tests.portal.oidc_issuer import CLIENT_ID, CLIENT_SECRET, Issuer, Person, running_issuer

SCIM_TOKEN = "scim-token-for-the-tests-0123456789abcdef"
SECRET_ENV = "CLEARANCE_TEST_SSO_CLIENT_SECRET"
__all__ = ["issuer", "sso_gateway"]  # the fixtures; helpers are imported by name

GROUP_ROLES = ["clearance-admins=admin", "compliance=operator", "auditors=viewer"]


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with running_issuer() as running:
        yield running


@pytest.fixture
def sso_gateway(
    db_url: str,
    tmp_path: Path,
    issuer: Issuer,
    upstream_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Running]:
    _, config = make_instance(db_url, tmp_path / "instance")
    digest = hashlib.sha256(SCIM_TOKEN.encode()).hexdigest()
    roles = ", ".join(f'"{r}"' for r in GROUP_ROLES)
    config.write_text(
        config.read_text()
        + f"""
[sso]
issuer = "{issuer.url}"
client_id = "{CLIENT_ID}"
client_secret_env = "{SECRET_ENV}"
scopes = ["openid", "email", "profile", "groups"]
group_roles = [{roles}]

[scim]
token_sha256 = ["{digest}"]
"""
    )
    settings = load_settings(config, environ={})
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    issuer.redirect_uri = settings.gateway.portal_url.rstrip("/") + "/signin/sso/callback"
    engine = connect(settings.database_url)
    migrate(engine)
    keys = seed(engine, settings, upstream_url)
    engine.dispose()
    app = create_app(settings)
    with serve_in_thread(app, http=DeadlineProtocol) as url:
        yield Running(url, upstream_url, keys, settings, config, app=app)


def to_provider(browser: Browser) -> httpx.Response:
    """Clearance's 303 to the provider's authorization endpoint."""
    start = browser.get("/portal/signin/sso")
    assert start.status_code == 303, start.text
    return start


def at_provider(location: str) -> str:
    """The provider's answer to the authorization request: the callback URL's path and query."""
    answer = httpx.get(location, timeout=30)
    assert answer.status_code == 302, answer.text
    target = urlsplit(answer.headers["location"])
    return f"{target.path}?{target.query}"


def sso_sign_in(browser: Browser, issuer: Issuer, person: Person) -> httpx.Response:
    """The whole walk, as a browser follows it: Clearance -> provider -> Clearance's callback."""
    issuer.login_as = person
    callback = at_provider(to_provider(browser).headers["location"])
    return browser.get(callback)
