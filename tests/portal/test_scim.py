"""SCIM 2.0 provisioning against a running Clearance, with a real SCIM client (scim2-client over
HTTP): users and groups, groups mapped to console roles, deprovisioning that ends the operator's
sessions and tokens at once, filters, paging and RFC 7644 §3.12 errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
import sqlalchemy as sa
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import (
    Email,
    Group,
    GroupMember,
    ListResponse,
    Name,
    PatchOp,
    PatchOperation,
    SCIMException,
    SearchRequest,
    User,
)
from sqlalchemy.engine import Engine

from clearance.admin import tokens
from clearance.audit.tables import audit_entries
from clearance.portal.operators import roles_of
from clearance.principals.service import get_user
from clearance.store import connect
from clearance.store.tables import admin_tokens
from tests.gateway.conftest import Running
from tests.portal.conftest import Browser
from tests.portal.idp import *  # noqa: F403 - its fixtures: issuer, sso_gateway
from tests.portal.idp import SCIM_TOKEN, sso_sign_in
from tests.portal.oidc_issuer import Issuer, Person

MEDIA = "application/scim+json"
DANA = Person(sub="u-dana", email="dana@corp.example.com", name="Dana Scully", groups=None)


@pytest.fixture
def engine(sso_gateway: Running) -> Iterator[Engine]:
    engine = connect(sso_gateway.settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def scim(sso_gateway: Running) -> Iterator[SyncSCIMClient]:
    http = httpx2.Client(
        base_url=f"{sso_gateway.url}/scim/v2",
        headers={"authorization": f"Bearer {SCIM_TOKEN}"},
        timeout=30,
    )
    client = SyncSCIMClient(http)
    client.discover()
    yield client
    http.close()


@pytest.fixture
def browser(sso_gateway: Running) -> Iterator[Browser]:
    b = Browser(sso_gateway.url)
    yield b
    b.close()


def new_user(email: str = "dana@corp.example.com", **fields: Any) -> User[Any]:
    return User(
        user_name=email,
        name=Name(given_name="Dana", family_name="Scully"),
        emails=[Email(value=email, primary=True)],
        active=True,
        external_id=f"ext-{email}",
        **fields,
    )


def _actions(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audit_entries.c.entry).order_by(audit_entries.c.idx))
        return [json.loads(raw) for raw in rows.scalars()]


def test_discovery(scim: SyncSCIMClient, sso_gateway: Running) -> None:
    config = scim.provider.config
    assert config is not None
    assert config.patch is not None and config.patch.supported
    assert config.filter is not None and config.filter.supported
    names = {t.name for t in scim.provider.resource_types}
    assert names == {"User", "Group"}
    raw = httpx.get(
        f"{sso_gateway.url}/scim/v2/Schemas",
        headers={"authorization": f"Bearer {SCIM_TOKEN}"},
    )
    assert raw.headers["content-type"].startswith(MEDIA)
    ids = {s["id"] for s in raw.json()["Resources"]}
    assert ids == {
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:core:2.0:Group",
    }


def test_a_provisioned_user_in_a_mapped_group_is_an_operator_until_deactivated(
    scim: SyncSCIMClient,
    sso_gateway: Running,
    issuer: Issuer,
    browser: Browser,
    engine: Engine,
) -> None:
    user = scim.create(new_user())
    assert user.id
    scim.create(Group(display_name="compliance", members=[GroupMember(value=user.id)]))
    with engine.connect() as conn:
        dana = get_user(conn, "dana@corp.example.com")
        assert roles_of(conn, dana.id) == ("operator",)
    # She signs in by SSO (the provider's groups claim agrees) and uses the console ...
    assert sso_sign_in(browser, issuer, DANA).status_code == 303
    assert browser.get("/console/").status_code == 200
    # ... and holds an admin token made in the console.
    with engine.begin() as conn:
        token, _ = tokens.create(
            conn,
            "dana's",
            frozenset({tokens.Scope.CATALOG_READ}),
            created_by=f"portal:{dana.subject_id}",
        )
    # The provider deactivates her: the next console request is refused, at once.
    patch = PatchOp[User](operations=[PatchOperation(op="replace", path="active", value=False)])
    done = scim.modify(User, user.id, patch)
    assert done.active is False
    after = browser.get("/console/")
    assert after.status_code == 303
    assert after.headers["location"].endswith("/portal/signin")
    with engine.connect() as conn:
        assert roles_of(conn, dana.id) == ()
        revoked = conn.execute(
            sa.select(admin_tokens.c.revoked_at).where(admin_tokens.c.id == token.id)
        ).scalar()
        assert revoked is not None
    actions = [e["action"] for e in _actions(engine) if e.get("subject") == dana.subject_id]
    assert actions[-4:] == [
        "scim.user.update",
        "operator.revoke",
        "operator.sessions.end",
        "admin_token.revoke",
    ]
    # Nor can she sign in again by SSO while deactivated.
    refused = sso_sign_in(browser, issuer, Person(**{**DANA.__dict__, "groups": ["compliance"]}))
    assert refused.status_code == 403
    assert "deactivated" in refused.text
    # Reactivated: the roles her groups give come back.
    patch = PatchOp[User](operations=[PatchOperation(op="replace", path="active", value=True)])
    scim.modify(User, user.id, patch)
    with engine.connect() as conn:
        assert roles_of(conn, dana.id) == ("operator",)


def test_group_membership_and_renames_move_roles(scim: SyncSCIMClient, engine: Engine) -> None:
    user = scim.create(new_user())
    assert user.id
    group = scim.create(Group(display_name="auditors"))
    assert group.id
    add = PatchOp[Group](
        operations=[PatchOperation(op="add", path="members", value=[GroupMember(value=user.id)])]
    )
    scim.modify(Group, group.id, add)
    with engine.connect() as conn:
        dana = get_user(conn, "dana@corp.example.com")
        assert roles_of(conn, dana.id) == ("viewer",)
    rename = PatchOp[Group](
        operations=[PatchOperation(op="replace", path="displayName", value="clearance-admins")]
    )
    scim.modify(Group, group.id, rename)
    with engine.connect() as conn:
        assert roles_of(conn, dana.id) == ("admin",)
    remove = PatchOp[Group](
        operations=[PatchOperation(op="remove", path=f'members[value eq "{user.id}"]')]
    )
    scim.modify(Group, group.id, remove)
    with engine.connect() as conn:
        assert roles_of(conn, dana.id) == ()
    fetched = scim.query(User, user.id)
    assert not fetched.groups


def test_delete_deprovisions_and_forgets(
    scim: SyncSCIMClient, sso_gateway: Running, issuer: Issuer, browser: Browser, engine: Engine
) -> None:
    user = scim.create(new_user())
    assert user.id
    group = scim.create(Group(display_name="compliance", members=[GroupMember(value=user.id)]))
    assert group.id
    assert sso_sign_in(browser, issuer, DANA).status_code == 303
    scim.delete(User, user.id)
    assert browser.get("/console/").status_code == 303
    with pytest.raises(SCIMException) as missing:
        scim.query(User, user.id)
    assert missing.value.status == 404
    left = scim.query(Group, group.id)
    assert not left.members
    with engine.connect() as conn:  # the account stays (its history is an export record)
        assert roles_of(conn, get_user(conn, "dana@corp.example.com").id) == ()


def test_filters_and_paging(scim: SyncSCIMClient, sso_gateway: Running) -> None:
    for n in range(3):
        scim.create(new_user(f"op{n}@corp.example.com"))
    found = scim.query(
        User, query_parameters=SearchRequest(filter='userName eq "OP1@corp.example.com"')
    )
    assert isinstance(found, ListResponse)
    assert found.total_results == 1
    assert found.resources and found.resources[0].user_name == "op1@corp.example.com"
    none = scim.query(
        User, query_parameters=SearchRequest(filter='userName eq "x@corp.example.com"')
    )
    assert isinstance(none, ListResponse) and none.total_results == 0
    by_external = scim.query(
        User, query_parameters=SearchRequest(filter='externalId eq "ext-op2@corp.example.com"')
    )
    assert isinstance(by_external, ListResponse) and by_external.total_results == 1
    page = scim.query(User, query_parameters=SearchRequest(start_index=2, count=1))
    assert isinstance(page, ListResponse)
    assert (page.total_results, page.start_index, page.items_per_page) == (3, 2, 1)
    assert page.resources and page.resources[0].user_name == "op1@corp.example.com"
    only = httpx.get(
        f"{sso_gateway.url}/scim/v2/Users",
        headers={"authorization": f"Bearer {SCIM_TOKEN}"},
        params={"filter": 'userName sw "op0"', "attributes": "userName"},
    ).json()
    assert only["totalResults"] == 1
    assert set(only["Resources"][0]) == {"schemas", "id", "userName"}


def test_errors_are_scim_errors(scim: SyncSCIMClient, sso_gateway: Running) -> None:
    scim.create(new_user())
    with pytest.raises(SCIMException) as taken:
        scim.create(new_user())
    assert (taken.value.status, taken.value.scim_type) == (409, "uniqueness")
    with pytest.raises(SCIMException) as unknown:
        scim.query(User, "no-such-id")
    assert unknown.value.status == 404
    base = f"{sso_gateway.url}/scim/v2"
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": SCIM_TOKEN}):
        refused = httpx.get(f"{base}/Users", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith(MEDIA)
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.json() == {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": "401",
            "detail": "a valid SCIM bearer token is required",
        }
    auth = {"authorization": f"Bearer {SCIM_TOKEN}", "content-type": MEDIA}
    # The client checks filters before sending them: this one goes raw.
    bad_filter = httpx.get(f"{base}/Users", headers=auth, params={"filter": 'userName eq "x'})
    assert (bad_filter.status_code, bad_filter.json()["scimType"]) == (400, "invalidFilter")
    not_json = httpx.post(f"{base}/Users", headers=auth, content=b"{")
    assert (not_json.status_code, not_json.json()["scimType"]) == (400, "invalidSyntax")
    no_email = httpx.post(
        f"{base}/Users",
        headers=auth,
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bob"},
    )
    assert (no_email.status_code, no_email.json()["scimType"]) == (400, "invalidValue")
    stale = httpx.delete(
        f"{base}/Users/{scim_id(base, auth)}", headers={**auth, "if-match": 'W/"99"'}
    )
    assert stale.status_code == 412


def scim_id(base: str, auth: dict[str, str]) -> str:
    listing = httpx.get(f"{base}/Users", headers=auth).json()
    return str(listing["Resources"][0]["id"])


def test_put_replaces_what_the_provider_sent(scim: SyncSCIMClient, engine: Engine) -> None:
    user = scim.create(new_user())
    user.name.given_name = "Dana K."  # the client's own User model, built from /Schemas
    user.user_name = "dscully@corp.example.com"
    replaced = scim.replace(user)
    assert replaced.user_name == "dscully@corp.example.com"
    fetched = scim.query(User, user.id)
    assert fetched.name is not None and fetched.name.given_name == "Dana K."
    assert fetched.meta is not None and fetched.meta.version == 'W/"2"'
    with engine.connect() as conn:  # the account keeps the address it was made with
        assert get_user(conn, "dana@corp.example.com")


def test_without_configuration_scim_answers_404_and_loads_nothing(tmp_path: Path) -> None:
    """Neither scim2-models nor Authlib is loaded by a worker that has no [scim] or [sso]."""
    probe = (
        "import sys\n"
        "from clearance.config import Settings\n"
        "from clearance.portal.scim import scim_app\n"
        "from clearance.portal.sso import provider_for\n"
        "from starlette.testclient import TestClient\n"
        "assert provider_for(Settings(), {}) is None\n"
        "answer = TestClient(scim_app(Settings(), None, None)).get('/Users')\n"
        "print(answer.status_code, answer.json()['status'],\n"
        "      [m for m in ('scim2_models', 'authlib', 'joserfc') if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.stdout.split() == ["404", "404", "[]"], done.stderr
