"""People, organisations, keys and licences from the CLI and the operator API (issue 17, item 1):
each verb an audit entry, the same JSON from both, a suspended person refused every model."""

from __future__ import annotations

import json
import time

import anthropic
import httpx
import openai
import pytest

from clearance.admin.tokens import Scope

from .conftest import Running
from .test_admin_api import audit_entry, bearer, make_token

ASK = {"messages": [{"role": "user", "content": "hi"}]}
MODELS = ("fable-4", "fable-5", "mythos-5")


def _served(gateway: Running, key: str, model: str) -> bool:
    try:
        gateway.openai(key).chat.completions.create(model=model, **ASK)  # type: ignore[call-overload]
    except openai.APIStatusError as exc:
        assert exc.status_code == 451, exc
        assert "account-suspended" in exc.response.text
        return False
    return True


def _wait(gateway: Running, key: str, model: str, served: bool) -> None:
    deadline = time.monotonic() + 5  # within the invalidation bound (the version poll)
    while _served(gateway, key, model) is not served:
        assert time.monotonic() < deadline, f"{model}: never {'served' if served else 'refused'}"
        time.sleep(0.1)


def test_suspended_person_is_refused_every_model_until_reinstated(gateway: Running) -> None:
    key = gateway.strict_key("alice")  # a US citizen: every model was hers
    for model in MODELS:
        assert _served(gateway, key, model)
    done = gateway.cli("users", "suspend", "alice@demo.test", "--reason", "ticket 7")
    for model in MODELS:
        _wait(gateway, key, model, served=False)
    # The other surface refuses too, and the fallback key gets no fallback.
    with pytest.raises(anthropic.APIStatusError) as refused:
        gateway.anthropic(gateway.key("alice")).messages.create(
            model="fable-4", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    assert refused.value.status_code == 451
    shown = json.loads(gateway.cli("users", "show", "alice@demo.test", "--json").output)
    assert (shown["status"], shown["suspended_reason"]) == ("suspended", "ticket 7")
    index = int(done.output.split("audit entry ")[1].rstrip(")\n"))
    entry = audit_entry(gateway, index)
    assert (entry["action"], entry["target"]) == ("user.suspend", shown["subject_id"])
    assert "alice@demo.test" not in json.dumps(entry)

    gateway.cli("users", "reinstate", "alice@demo.test", "--reason", "cleared")
    for model in MODELS:
        _wait(gateway, key, model, served=True)


def test_api_suspension_and_lists_match_the_cli(gateway: Running) -> None:
    token_id, secret = make_token(gateway, Scope.PRINCIPALS_READ, Scope.PRINCIPALS_WRITE)
    with httpx.Client(base_url=gateway.url + "/admin/api", headers=bearer(secret)) as admin:
        listed = admin.get("/users", params={"limit": 2})
        assert listed.status_code == 200, listed.text
        first = listed.json()
        assert len(first["users"]) == 2 and first["next"]
        rest = admin.get("/users", params={"limit": 500, "after": first["next"]}).json()
        everyone = admin.get("/users", params={"limit": 500}).json()
        assert first["users"] + rest["users"] == everyone["users"] and rest["next"] is None
        cli = json.loads(gateway.cli("users", "list", "--limit", "500", "--json").output)
        assert cli == everyone
        paged = json.loads(gateway.cli("users", "list", "--limit", "2", "--json").output)
        assert paged == first
        assert admin.get("/users", params={"limit": 0}).status_code == 400
        assert admin.get("/users", params={"after": "x"}).status_code == 400

        found = admin.post("/users/search", json={"text": "WALKER"}).json()
        assert [u["email"] for u in found["users"]] == ["alice@demo.test"]
        assert json.loads(gateway.cli("users", "search", "walker", "--json").output) == found

        subject = found["users"][0]["subject_id"]
        assert admin.post(f"/users/{subject}/suspend", json={}).status_code == 400
        done = admin.post(f"/users/{subject}/suspend", json={"reason": "case 9"})
        assert done.status_code == 200 and done.json()["status"] == "suspended"
        entry = audit_entry(gateway, done.json()["audit_index"])
        assert (entry["actor"], entry["action"]) == (f"admin-token:{token_id}", "user.suspend")
        assert admin.post(f"/users/{subject}/suspend", json={"reason": "x"}).status_code == 409
        back = admin.post(f"/users/{subject}/reinstate", json={"reason": "ok"})
        assert back.json()["status"] == "active"
        assert admin.post("/users/sub_nobody/suspend", json={"reason": "x"}).status_code == 404

        orgs = admin.get("/orgs").json()
        assert orgs == json.loads(gateway.cli("orgs", "list", "--json").output)
        acme = admin.get("/orgs/Acme Corp").json()
        assert acme == json.loads(gateway.cli("orgs", "show", "Acme Corp", "--json").output)
        assert acme["members"] == len(acme["member_list"]) >= 1
        members = admin.get("/orgs/Acme Corp/members").json()
        assert members["users"] == acme["member_list"]

        keys = admin.get("/keys", params={"user": subject}).json()
        assert keys == json.loads(
            gateway.cli("keys", "list", "--user", "alice@demo.test", "--json").output
        )
        assert keys["keys"] and all(k["owner"] == subject for k in keys["keys"])
        assert all("sk-clr-" not in json.dumps(k) for k in keys["keys"])


def test_licence_revoke_renew_expire(gateway: Running) -> None:
    _, secret = make_token(gateway, Scope.PRINCIPALS_READ, Scope.PRINCIPALS_WRITE)
    with httpx.Client(base_url=gateway.url + "/admin/api", headers=bearer(secret)) as admin:
        listed = admin.get("/licences").json()
        assert listed == json.loads(gateway.cli("licences", "list", "--json").output)
        lic = listed["licences"][0]
        assert lic["authority"] == "BIS" and lic["models"] == ["fable-5"]
        assert lic["status"] == "active" and lic["nationalities"]
        renewed = admin.post(f"/licences/{lic['id']}/renew", json={"until": "2099-12-31"})
        assert renewed.status_code == 200 and renewed.json()["expires"] == "2099-12-31"
        assert (
            admin.post(f"/licences/{lic['id']}/renew", json={"until": "2000-01-01"}).status_code
            == 400
        )
        gateway.cli("licences", "expire", str(lic["id"]))
        shown = json.loads(gateway.cli("licences", "show", str(lic["id"]), "--json").output)
        assert shown["status"] == "expired"
        revoked = admin.post(f"/licences/{lic['id']}/revoke", json={"reason": "BIS letter"})
        assert revoked.json()["status"] == "revoked"
        entry = audit_entry(gateway, revoked.json()["audit_index"])
        assert entry["action"] == "licence.revoke"
        assert admin.post(f"/licences/{lic['id']}/expire").status_code == 409
        assert admin.get("/licences/999999").status_code == 404
