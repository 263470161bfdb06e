"""The catalog in the operator API (/admin/api, admin/catalog_routes.py): upstreams listed,
changed and removed when unused; models re-pointed, reclassified and retired; each change an
audit entry naming the token, and what every worker serves changes with it (issue 17, item 1)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from clearance.admin.tokens import Scope

from .conftest import Running
from .test_admin_api import audit_entry, bearer, make_token

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]


@pytest.fixture
def catalog_api(gateway: Running) -> Iterator[tuple[httpx.Client, str]]:
    token_id, secret = make_token(gateway, Scope.CATALOG_READ, Scope.CATALOG_WRITE)
    with httpx.Client(
        base_url=gateway.url + "/admin/api", headers=bearer(secret), timeout=30
    ) as client:
        yield client, token_id


def served(gateway: Running, who: str, model: str) -> str:
    raw = gateway.openai(gateway.key(who)).chat.completions.with_raw_response.create(
        model=model, messages=HELLO
    )
    return raw.headers["clearance-model-served"]


def test_reclassify_changes_who_is_served_with_rationale_evidence_and_audit(
    gateway: Running, catalog_api: tuple[httpx.Client, str]
) -> None:
    api, token_id = catalog_api
    # Sven, a verified Swedish national without a licence, is served fable-5's fallback.
    assert served(gateway, "sven", "fable-5") == "fable-4"

    body = {"classification": "uncontrolled", "rationale": "re-evaluated: below threshold"}
    made = api.post("/models/fable-5/reclassify", json=body)
    assert made.status_code == 200, made.text
    gateway.poll()
    assert served(gateway, "sven", "fable-5") == "fable-5"

    body = {
        "classification": "controlled",
        "rationale": "CBRN uplift evaluation above the policy threshold",
        "evidence": "https://evals.example/fable-5/2026-11",
    }
    made = api.post("/models/fable-5/reclassify", json=body)
    assert made.status_code == 200, made.text
    model = made.json()
    assert (model["classification"], model["classification_source"]) == ("controlled", "explicit")
    assert model["evidence"] == "https://evals.example/fable-5/2026-11"
    gateway.poll()
    assert served(gateway, "sven", "fable-5") == "fable-4"  # the fallback again
    assert served(gateway, "alice", "fable-5") == "fable-5"  # a US citizen still served

    # The API's answer is the CLI's --json shape, and the listing agrees with both.
    listed = {m["id"]: m for m in api.get("/models").json()["models"]}
    cli_out = gateway.cli("models", "list", "--json").output
    cli_listed = {m["id"]: m for m in json.loads(cli_out)}
    assert listed == cli_listed
    assert listed["fable-5"] == {k: v for k, v in model.items() if k != "audit_index"}

    entry = audit_entry(gateway, model["audit_index"])
    assert (entry["action"], entry["target"]) == ("model.reclassify", "fable-5")
    assert entry["actor"] == f"admin-token:{token_id}"
    details = entry["details"]
    assert isinstance(details, dict)
    assert details["rationale"] == body["rationale"]
    assert details["evidence"] == body["evidence"]
    assert details["changes"]["classification"] == {
        "from": "uncontrolled",
        "to": "controlled",
    }


def test_retired_model_is_refused_to_everyone_and_never_a_fallback(
    gateway: Running, catalog_api: tuple[httpx.Client, str]
) -> None:
    api, _ = catalog_api
    assert served(gateway, "sven", "fable-5") == "fable-4"
    made = api.post("/models/fable-4/retire", json={"reason": "end of life, 2026-12"})
    assert made.status_code == 200, made.text
    assert made.json()["status"] == "retired"
    assert made.json()["unlinked_from"] == ["fable-5"]
    entry = audit_entry(gateway, made.json()["audit_index"])
    assert (entry["action"], entry["details"]) == (
        "model.retire",
        {"reason": "end of life, 2026-12", "unlinked_from": ["fable-5"]},
    )
    gateway.poll()

    # Refused to a US citizen too, with the named rule and the operator's reason.
    with pytest.raises(openai.APIStatusError) as refused:
        gateway.openai(gateway.key("alice")).chat.completions.create(
            model="fable-4", messages=HELLO
        )
    assert refused.value.status_code == 451
    assert "model-retired" in refused.value.message
    assert "end of life, 2026-12" in refused.value.message
    # No longer a fallback: Sven is refused fable-5 instead of served fable-4.
    with pytest.raises(openai.APIStatusError) as no_fallback:
        gateway.openai(gateway.key("sven")).chat.completions.create(model="fable-5", messages=HELLO)
    assert no_fallback.value.status_code == 451
    assert "controlled-foreign-person" in no_fallback.value.message
    # Not listed in /v1/models, for anyone.
    listed = [m.id for m in gateway.openai(gateway.key("alice")).models.list()]
    assert "fable-4" not in listed and "fable-5" in listed

    # For good: it cannot be made a fallback again, changed or retired twice.
    again = api.post("/models/mythos-5/update", json={"fallbacks": ["fable-4"]})
    assert again.status_code == 409 and "retired" in again.json()["error"]["message"]
    twice = api.post("/models/fable-4/retire", json={"reason": "again"})
    assert twice.status_code == 409


def test_models_update_refuses_a_cycle_and_changes_nothing(
    gateway: Running, catalog_api: tuple[httpx.Client, str]
) -> None:
    api, _ = catalog_api
    cycle = api.post("/models/fable-4/update", json={"fallbacks": ["mythos-5"]})
    assert cycle.status_code == 409
    message = cycle.json()["error"]["message"]
    assert "fable-4 -> mythos-5 -> fable-5 -> fable-4" in message
    unknown = api.post("/models/fable-4/update", json={"fallbacks": ["no-such-model"]})
    assert unknown.status_code == 404
    assert api.post("/models/fable-4/update", json={"colour": "red"}).status_code == 400
    assert api.post("/models/fable-4/update", json={}).status_code == 400
    models = {m["id"]: m for m in api.get("/models").json()["models"]}
    assert models["fable-4"]["fallbacks"] == []

    made = api.post("/models/mythos-5/update", json={"fallbacks": ["fable-4"]})
    assert made.status_code == 200, made.text
    assert made.json()["fallbacks"] == ["fable-4"]
    gateway.poll()
    assert served(gateway, "sven", "mythos-5") == "fable-4"


def test_upstreams_listed_updated_and_removed_only_when_unused(
    gateway: Running, catalog_api: tuple[httpx.Client, str]
) -> None:
    api, token_id = catalog_api
    gateway.cli("upstreams", "add", "spare", "--kind", "anthropic", "--base-url", "http://s.test")
    listed = api.get("/upstreams").json()["upstreams"]
    assert {u["name"] for u in listed} == {"demo", "spare"}

    changed = api.post("/upstreams/spare/update", json={"api_key_env": "SPARE_KEY"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["api_key_env"] == "SPARE_KEY"
    cleared = api.post("/upstreams/spare/update", json={"api_key_env": None})
    assert cleared.json()["api_key_env"] is None
    bad = api.post("/upstreams/spare/update", json={"base_url": "file:///etc/passwd"})
    assert bad.status_code == 400

    in_use = api.post("/upstreams/demo/remove")
    assert in_use.status_code == 409
    assert "fable-4, fable-5, mythos-5" in in_use.json()["error"]["message"]
    removed = api.post("/upstreams/spare/remove")
    assert removed.status_code == 200, removed.text
    entry = audit_entry(gateway, removed.json()["audit_index"])
    assert (entry["action"], entry["target"], entry["actor"]) == (
        "upstream.remove",
        "spare",
        f"admin-token:{token_id}",
    )
    assert [u["name"] for u in api.get("/upstreams").json()["upstreams"]] == ["demo"]
    assert api.post("/upstreams/spare/remove").status_code == 404


def test_catalog_changes_need_catalog_write(gateway: Running) -> None:
    _, secret = make_token(gateway, Scope.CATALOG_READ)
    with httpx.Client(base_url=gateway.url + "/admin/api", headers=bearer(secret)) as api:
        assert api.get("/upstreams").status_code == 200
        refused = api.post("/models/fable-4/retire", json={"reason": "x"})
        assert refused.status_code == 403
    listed = {m["id"]: m for m in httpx.get(
        gateway.url + "/admin/api/models", headers=bearer(secret)
    ).json()["models"]}  # fmt: skip
    assert listed["fable-4"]["status"] == "active"


def test_phased_restore_reaches_the_worker_step_by_step(
    gateway: Running, catalog_api: tuple[httpx.Client, str]
) -> None:
    """Suspend, restore to Acme Corp's members, then to everyone: each step an entry naming the
    token and the cohort, and what the worker serves follows it after one poll."""
    api, token_id = catalog_api
    assert api.post("/models/fable-4/suspend", json={"reason": "incident 42"}).status_code == 200
    gateway.poll()
    for who in ("alice", "erik"):
        with pytest.raises(openai.APIStatusError) as suspended:
            gateway.openai(gateway.key(who)).chat.completions.create(
                model="fable-4", messages=HELLO
            )
        assert "model-suspended" in suspended.value.message

    step = api.post("/models/fable-4/restore", json={"orgs": ["Acme Corp"], "reason": "canary"})
    assert step.status_code == 200, step.text
    assert (step.json()["status"], step.json()["restore"]["orgs"]) == ("restoring", ["Acme Corp"])
    gateway.poll()
    assert served(gateway, "erik", "fable-4") == "fable-4"  # an Acme Corp member
    with pytest.raises(openai.APIStatusError) as outside:
        gateway.openai(gateway.key("alice")).chat.completions.create(
            model="fable-4", messages=HELLO
        )
    assert outside.value.status_code == 451 and "model-restoring" in outside.value.message
    entry = audit_entry(gateway, step.json()["audit_index"])
    assert (entry["action"], entry["actor"]) == ("model.resume", f"admin-token:{token_id}")
    assert entry["details"] == {
        "reason": "canary",
        "status": "restoring",
        "cohort": {"percent": 0, "orgs": ["Acme Corp"], "internal": False},
        "previous_cohort": None,
    }

    both = api.post("/models/fable-4/restore", json={"percent": 10, "orgs": ["Acme Corp"]})
    assert both.status_code == 400  # one cohort per step
    done = api.post("/models/fable-4/restore", json={"percent": 100, "reason": "all clear"})
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["restore"]) == ("active", None)
    gateway.poll()
    assert served(gateway, "alice", "fable-4") == "fable-4"
    assert audit_entry(gateway, done.json()["audit_index"])["details"]["cohort"] == "everyone"
