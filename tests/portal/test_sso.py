"""Operator sign-in by OpenID Connect against a real provider over HTTP (oidc_issuer.py, built on
Authlib's server side): authorization code + PKCE + state + nonce, the ID token validated, groups
mapped to console roles on each sign-in."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc.jwk import RSAKey
from sqlalchemy.engine import Engine

from clearance.audit.tables import audit_entries
from clearance.config import settings_from_mapping
from clearance.errors import ConfigError
from clearance.portal.operators import roles_of
from clearance.portal.provisioning import GroupRoles
from clearance.portal.sso import provider_for
from clearance.portal.sso.tables import operator_identities
from clearance.principals.service import get_user
from clearance.store import connect
from clearance.store.tables import users
from tests.gateway.conftest import Running
from tests.portal.conftest import Browser
from tests.portal.idp import *  # noqa: F403 - its fixtures: issuer, sso_gateway
from tests.portal.idp import at_provider, sso_sign_in, to_provider
from tests.portal.oidc_issuer import CLIENT_ID, Issuer, Person

DANA = Person(sub="u-dana", email="dana@corp.test", name="Dana Scully", groups=["compliance"])


@pytest.fixture
def engine(sso_gateway: Running) -> Iterator[Engine]:
    engine = connect(sso_gateway.settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def browser(sso_gateway: Running) -> Iterator[Browser]:
    b = Browser(sso_gateway.url)
    yield b
    b.close()


@pytest.fixture
def other_browser(sso_gateway: Running) -> Iterator[Browser]:
    b = Browser(sso_gateway.url)
    yield b
    b.close()


def test_sign_in_end_to_end(
    sso_gateway: Running, issuer: Issuer, browser: Browser, engine: Engine
) -> None:
    done = sso_sign_in(browser, issuer, DANA)
    assert done.status_code == 303, done.text
    assert done.headers["location"].endswith("/console/")
    assert browser.get("/console/").status_code == 200
    with engine.connect() as conn:
        assert roles_of(conn, get_user(conn, DANA.email).id) == ("operator",)
    # PKCE: the challenge sent was the S256 of the verifier sent with the code.
    sent = issuer.authorization_requests[-1]
    assert sent["code_challenge_method"] == "S256"
    verifier = issuer.token_requests[-1]["code_verifier"]
    assert sent["code_challenge"] == create_s256_code_challenge(verifier)


def _entries(engine: Engine, action: str) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_entries.c.entry).order_by(audit_entries.c.idx)
        ).scalars()
        found = [json.loads(raw) for raw in rows]
    return [e for e in found if e.get("action") == action]


def test_roles_follow_the_groups_at_each_sign_in(
    sso_gateway: Running, issuer: Issuer, browser: Browser, engine: Engine
) -> None:
    admin = replace(DANA, groups=["clearance-admins", "unrelated"])
    assert sso_sign_in(browser, issuer, admin).status_code == 303
    with engine.connect() as conn:
        dana = get_user(conn, DANA.email)
        assert roles_of(conn, dana.id) == ("admin",)
    # A role the map never names is granted by hand and stays.
    sso_gateway.cli("users", "operator", "grant", DANA.email, "--role", "reviewer")
    assert sso_sign_in(browser, issuer, replace(DANA, groups=["auditors"])).status_code == 303
    with engine.connect() as conn:
        assert sorted(roles_of(conn, dana.id)) == ["reviewer", "viewer"]
    revoked = _entries(engine, "operator.revoke")[-1]
    assert revoked["actor"] == f"sso:{issuer.url}"
    assert revoked["details"] == {"role": "admin", "roles": ["reviewer", "viewer"], "source": "sso"}
    granted = [e["details"]["role"] for e in _entries(engine, "operator.grant")]  # type: ignore[index]
    assert granted[-1] == "viewer"
    assert browser.get("/console/operators").status_code == 403  # admin is gone at once


def test_groups_that_give_no_role_sign_nobody_in(
    sso_gateway: Running, issuer: Issuer, browser: Browser, engine: Engine
) -> None:
    refused = sso_sign_in(browser, issuer, replace(DANA, groups=["unrelated"]))
    assert refused.status_code == 403
    assert "no role" in refused.text
    assert "__Host-clearance_session" not in browser.cookies
    with engine.connect() as conn:  # and no account was made for the stranger
        assert (
            conn.execute(sa.select(users.c.id).where(users.c.email == DANA.email)).first() is None
        )


def test_an_operator_whose_groups_are_gone_is_signed_out_of_the_console(
    sso_gateway: Running, issuer: Issuer, browser: Browser, engine: Engine
) -> None:
    assert sso_sign_in(browser, issuer, DANA).status_code == 303
    assert sso_sign_in(browser, issuer, replace(DANA, groups=[])).status_code == 403
    with engine.connect() as conn:
        assert roles_of(conn, get_user(conn, DANA.email).id) == ()
    assert _entries(engine, "operator.revoke")[-1]["details"] == {
        "role": "operator",
        "roles": [],
        "source": "sso",
    }


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"nonce": "a-nonce-this-browser-never-sent"}, "nonce"),
        ({"aud": ["someone-else"]}, "aud"),
        ({"iss": "https://impostor.example"}, "iss"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "exp"),
        ({"iat": int(time.time()) + 3600}, "future"),
        ({"aud": [CLIENT_ID, "another"], "azp": "another"}, "azp"),
    ],
)
def test_an_id_token_that_fails_a_check_signs_nobody_in(
    sso_gateway: Running,
    issuer: Issuer,
    browser: Browser,
    claims: dict[str, object],
    why: str,
) -> None:
    """OpenID Connect Core 1.0 §3.1.3.7, steps 2, 3, 4-5, 9, 10 and 11."""
    issuer.claims = claims
    refused = sso_sign_in(browser, issuer, DANA)
    assert refused.status_code == 422, refused.text
    assert why in refused.text or "refused" in refused.text
    assert "__Host-clearance_session" not in browser.cookies


def test_a_token_signed_with_a_key_not_in_the_jwks_is_refused(
    sso_gateway: Running, issuer: Issuer, browser: Browser
) -> None:
    issuer.foreign_key = RSAKey.generate_key(2048, parameters={"kid": "issuer-1"})
    refused = sso_sign_in(browser, issuer, DANA)
    assert refused.status_code == 422
    assert "signature" in refused.text


def test_state_is_single_use_and_bound_to_the_browser(
    sso_gateway: Running, issuer: Issuer, browser: Browser, other_browser: Browser
) -> None:
    issuer.login_as = DANA
    callback = at_provider(to_provider(browser).headers["location"])
    # Another browser (an attacker's link) cannot finish this browser's sign-in.
    assert other_browser.get(callback).status_code == 403
    assert "__Host-clearance_session" not in other_browser.cookies
    # The attempt spent the state: not even the right browser can use it now.
    assert browser.get(callback).status_code == 403
    # An unknown state, or none, is refused before anything is asked of the provider.
    asked = len(issuer.token_requests)
    assert browser.get("/portal/signin/sso/callback?code=x&state=forged").status_code == 403
    assert browser.get("/portal/signin/sso/callback?code=x").status_code == 403
    assert len(issuer.token_requests) == asked


def test_pkce_stops_a_code_injected_into_another_sign_in(
    sso_gateway: Running, issuer: Issuer, browser: Browser, other_browser: Browser
) -> None:
    """RFC 7636 §1: a code stolen from one sign-in, delivered with another's state, is useless
    because the token request carries the verifier of the sign-in it is delivered to."""
    issuer.login_as = DANA
    mine = urlsplit(to_provider(browser).headers["location"])
    stolen = parse_qs(urlsplit(at_provider(to_provider(other_browser).headers["location"])).query)
    state = parse_qs(mine.query)["state"][0]
    injected = browser.get(f"/portal/signin/sso/callback?code={stolen['code'][0]}&state={state}")
    assert injected.status_code == 422
    assert "invalid_grant" in injected.text
    assert issuer.token_requests[-1]["code_verifier"]  # it was sent, and did not match


def test_the_provider_refuses_an_authorization_request_without_pkce(issuer: Issuer) -> None:
    """The test provider is strict (RFC 9700 §2.1.1): a client that sent no challenge gets no
    code, so a relying party that forgot PKCE fails these tests."""
    issuer.login_as = DANA
    issuer.redirect_uri = "http://127.0.0.1:8080/portal/signin/sso/callback"
    answer = httpx.get(
        f"{issuer.url}/authorize",
        params={
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": issuer.redirect_uri,
            "scope": "openid",
            "state": "s",
            "nonce": "n",
        },
    )
    assert answer.status_code == 400
    assert "PKCE" in answer.text


def test_an_unverified_address_takes_over_no_account(
    sso_gateway: Running, issuer: Issuer, browser: Browser, engine: Engine
) -> None:
    impostor = Person("u-x", "alice@demo.test", "Alice", ["clearance-admins"], False)
    refused = sso_sign_in(browser, issuer, impostor)
    assert refused.status_code == 403
    assert "not verified" in refused.text
    with engine.connect() as conn:
        assert conn.execute(sa.select(operator_identities)).first() is None


def test_the_sign_in_page_offers_sso_and_the_emailed_link(
    sso_gateway: Running, browser: Browser
) -> None:
    page = browser.get("/portal/signin")
    assert 'href="/portal/signin/sso"' in page.text
    assert 'action="/portal/signin"' in page.text


def test_a_provider_without_s256_is_refused(
    sso_gateway: Running, issuer: Issuer, browser: Browser
) -> None:
    issuer.advertise = {"code_challenge_methods_supported": ["plain"]}
    refused = browser.get("/portal/signin/sso")
    assert refused.status_code == 500
    assert "PKCE" in refused.text


def test_a_token_without_a_groups_claim_changes_no_role(
    sso_gateway: Running, issuer: Issuer, browser: Browser, engine: Engine
) -> None:
    """Roles given by SCIM or by hand stay when the provider puts no groups in the token."""
    assert sso_sign_in(browser, issuer, DANA).status_code == 303
    second = Browser(sso_gateway.url)
    try:
        assert sso_sign_in(second, issuer, replace(DANA, groups=None)).status_code == 303
        assert second.get("/console/").status_code == 200
    finally:
        second.close()
    with engine.connect() as conn:
        assert roles_of(conn, get_user(conn, DANA.email).id) == ("operator",)
    # Without a claim and without a role, no session either.
    stranger = Person("u-s", "s@corp.test", "S", None)
    assert sso_sign_in(browser, issuer, stranger).status_code == 403


def test_the_client_secret_comes_from_the_environment_only(tmp_path: Path) -> None:
    base = {
        "sso": {
            "issuer": "https://login.example.com",
            "client_id": "c",
            "client_secret_env": "MY_SSO_SECRET",
        }
    }
    settings = settings_from_mapping(base, base=tmp_path)
    with pytest.raises(ConfigError, match=r"\$MY_SSO_SECRET is not set"):
        provider_for(settings, {})
    provider = provider_for(settings, {"MY_SSO_SECRET": "s"})
    assert provider is not None and provider.client_secret == "s"
    assert provider.redirect_uri.endswith("/portal/signin/sso/callback")
    plain = settings_from_mapping(
        {"sso": {**base["sso"], "issuer": "http://idp.example.com"}}, base=tmp_path
    )
    with pytest.raises(ConfigError, match="https"):
        provider_for(plain, {"MY_SSO_SECRET": "s"})
    assert provider_for(settings_from_mapping({}, base=tmp_path), {}) is None


def test_group_roles_read_from_the_settings(tmp_path: Path) -> None:
    settings = settings_from_mapping(
        {"sso": {"group_roles": ["a=admin", "a=reviewer", "team=x=viewer", "b=operator"]}},
        base=tmp_path,
    )
    groups = GroupRoles.from_settings(settings.sso)
    assert groups.managed == {"admin", "reviewer", "viewer", "operator"}
    assert groups.roles(["a"]) == {"admin", "reviewer"}
    assert groups.roles(["team=x", "nobody"]) == {"viewer"}
    with pytest.raises(ConfigError, match="GROUP=ROLE"):
        settings_from_mapping({"sso": {"group_roles": ["a=superuser"]}}, base=tmp_path)
    with pytest.raises(ConfigError, match="openid"):
        settings_from_mapping({"sso": {"scopes": ["email"]}}, base=tmp_path)
