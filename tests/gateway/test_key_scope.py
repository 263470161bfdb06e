"""Keys scoped to some models (`clearance keys create --model`, `keys scope`): the official SDK
is refused any other model with 403, and a fallback outside the scope is never served."""

from __future__ import annotations

import json

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.gateway.conftest import Running
from tests.portal.review_cases import Instance

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]


def _secret(output: str) -> str:
    return output.strip().splitlines()[-1].strip()


def _key_id(output: str) -> str:
    return output.split()[1]  # "key k_... for ..."


def test_a_scoped_key_reaches_its_models_only_and_the_scope_can_change(gateway: Running) -> None:
    made = gateway.cli("keys", "create", "alice@demo.test", "--model", "fable-4").output
    assert "models fable-4" in made
    client = gateway.openai(_secret(made))
    assert client.chat.completions.create(model="fable-4", messages=HELLO).choices
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="mythos-5", messages=HELLO)
    error = refused.value.response.json()["error"]
    assert error["code"] == "permission_denied" and "not scoped for the model" in error["message"]
    # The refusal is recorded like any other, with its reason.
    db = Instance(gateway.settings)
    try:
        (found,) = [e for e in db.entries() if e.get("status") == 403]
    finally:
        db.close()
    assert found["model_requested"] == "mythos-5" and found["reason"] == "key_model_scope"

    key_id = _key_id(made)
    listed = json.loads(gateway.cli("keys", "list", "--user", "alice@demo.test", "--json").output)
    assert next(k for k in listed["keys"] if k["id"] == key_id)["models"] == ["fable-4"]
    gateway.cli("keys", "scope", key_id, "--model", "mythos-5")
    gateway.poll()
    assert client.chat.completions.create(model="mythos-5", messages=HELLO).choices
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="fable-4", messages=HELLO)
    gateway.cli("keys", "scope", key_id, "--all-models")
    gateway.poll()
    for model in ("fable-4", "mythos-5"):
        assert client.chat.completions.create(model=model, messages=HELLO).choices


def test_a_fallback_outside_the_scope_is_refused_not_served(gateway: Running) -> None:
    # Nina is unverified: mythos-5 falls back for her, unless her key may not use the fallback.
    plain = gateway.openai(gateway.key("nina")).chat.completions.with_raw_response.create(
        model="mythos-5", messages=HELLO
    )
    fallback = plain.headers["clearance-model-served"]
    assert fallback != "mythos-5"
    made = gateway.cli("keys", "create", "nina@demo.test", "--model", "mythos-5").output
    with pytest.raises(openai.APIStatusError) as refused:
        gateway.openai(_secret(made)).chat.completions.create(model="mythos-5", messages=HELLO)
    assert refused.value.status_code == 451


def test_a_scope_names_catalog_models(gateway: Running) -> None:
    from typer.testing import CliRunner

    from clearance.cli.app import app as cli_app

    done = CliRunner().invoke(
        cli_app,
        [
            "keys",
            "create",
            "alice@demo.test",
            "--model",
            "gpt-nine",
            "--config",
            str(gateway.config_file),
        ],
    )
    assert done.exit_code != 0 and "unknown model 'gpt-nine'" in str(done.exception)
