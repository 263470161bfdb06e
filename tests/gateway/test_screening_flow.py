"""Loading a list flags an existing user whose name matches and cuts access on the next request."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from .conftest import Running

LISTS = Path(__file__).resolve().parents[1] / "fixtures" / "lists"
HELLO = [{"role": "user", "content": "hi"}]


def test_new_list_version_cuts_access_on_the_next_request(gateway: Running) -> None:
    gateway.cli("users", "add", "uday@x.test", "--name", "Uday Saddam Hussein al-Tikriti")
    key = gateway.cli("keys", "create", "uday@x.test").stdout.strip().splitlines()[-1]
    client = gateway.openai(key)
    assert client.chat.completions.create(model="fable-4", messages=HELLO).model == "fable-4"

    gateway.cli(
        "lists",
        "load",
        str(LISTS / "sdn.csv"),
        str(LISTS / "alt.csv"),
        str(LISTS / "add.csv"),
        "--format",
        "ofac-sdn",
    )
    gateway.poll()
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="fable-4", messages=HELLO)
    assert err.value.status_code == 451
    body = err.value.response.json()["error"]
    assert body["code"] == "restricted-party"
    # Never tip off: the 451 names no list and no entry.
    assert "SDN" not in body["message"] and "TIKRITI" not in body["message"].upper()
    # Everyone else is unaffected.
    other = gateway.openai(gateway.key("alice"))
    assert other.chat.completions.create(model="fable-4", messages=HELLO).model == "fable-4"


def test_a_listed_organisation_cuts_access_for_its_members(gateway: Running) -> None:
    gateway.cli("orgs", "add", "Anglo-Caribbean Co Ltd", "--country", "GB")
    gateway.cli(
        "users", "add", "staff@x.test", "--name", "Jane Doe", "--org", "Anglo-Caribbean Co Ltd"
    )
    gateway.cli(
        "identity",
        "attest",
        "staff@x.test",
        "--nationality",
        "US",
        "--us-person",
        "citizen",
        "--method",
        "document",
    )
    key = gateway.cli("keys", "create", "staff@x.test").stdout.strip().splitlines()[-1]
    client = gateway.openai(key)
    assert client.chat.completions.create(model="mythos-5", messages=HELLO).model == "mythos-5"
    gateway.cli(
        "lists",
        "load",
        str(LISTS / "sdn.csv"),
        str(LISTS / "alt.csv"),
        str(LISTS / "add.csv"),
        "--format",
        "ofac-sdn",
    )
    gateway.poll()
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="fable-4", messages=HELLO)
    assert err.value.status_code == 451
    assert err.value.response.json()["error"]["code"] == "restricted-party"
