"""Every response's audit index is provably in the signed log, which holds no personal data."""

from __future__ import annotations

import base64
import time

import httpx
import openai
import orjson
import pytest
from starlette.types import Receive, Scope, Send

from clearance.audit import merkle
from clearance.audit.checkpoint import open_checkpoint
from clearance.audit.keys import NoteVerifier, verifier_key
from clearance.net.serving import serve_in_thread

from .conftest import Running

HELLO = [{"role": "user", "content": "my secret prompt text"}]


def _checkpoint_covering(
    http: httpx.Client, verifier: NoteVerifier, index: int
) -> tuple[int, bytes]:
    deadline = time.monotonic() + 5
    while True:
        cp = open_checkpoint(http.get("/audit/checkpoint").text, verifier)
        if cp.size > index:
            return cp.size, cp.root
        if time.monotonic() > deadline:
            raise AssertionError(f"no checkpoint covers index {index} after 5 s")
        time.sleep(0.1)


def test_each_response_index_has_an_inclusion_proof(gateway: Running) -> None:
    verifier = NoteVerifier.from_text(
        verifier_key(gateway.settings.audit.signing_key_file.read_text())
    )
    client = gateway.openai(gateway.key("sven"))
    strict = gateway.openai(gateway.strict_key("sven"))
    indices = [
        int(
            client.chat.completions.with_raw_response.create(
                model="mythos-5", messages=HELLO
            ).headers["clearance-audit-index"]
        )
    ]
    with pytest.raises(openai.APIStatusError) as denied:
        strict.chat.completions.create(model="mythos-5", messages=HELLO)
    indices.append(int(denied.value.response.headers["clearance-audit-index"]))

    with httpx.Client(base_url=gateway.url) as http:
        size, root = _checkpoint_covering(http, verifier, max(indices))
        for index in indices:
            entry = http.get(f"/audit/entries/{index}").content
            proof = http.get("/audit/proof/inclusion", params={"index": index, "size": size})
            hashes = [base64.b64decode(h) for h in proof.json()["hashes"]]
            merkle.verify_inclusion(index, size, merkle.leaf_hash(entry), hashes, root)
            text = entry.decode()
            # Pseudonymous subject and digests only: no email, key, name or prompt.
            assert "sven@demo.test" not in text and "sk-clr-" not in text
            assert "secret prompt" not in text and "Swedish" not in text
            assert '"type":"access_decision"' in text
        tampered = bytearray(http.get(f"/audit/entries/{indices[0]}").content)
        tampered[-2] ^= 1
        proof = http.get("/audit/proof/inclusion", params={"index": indices[0], "size": size})
        with pytest.raises(merkle.VerificationError):
            merkle.verify_inclusion(
                indices[0],
                size,
                merkle.leaf_hash(bytes(tampered)),
                [base64.b64decode(h) for h in proof.json()["hashes"]],
                root,
            )


def test_unreachable_upstream_is_a_502_that_reveals_nothing(gateway: Running) -> None:
    gateway.cli(
        "upstreams",
        "add",
        "dead",
        "--kind",
        "openai",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--api-key-env",
        "DEAD_UPSTREAM_KEY",
    )
    gateway.cli("models", "add", "dead-model", "--upstream", "dead", "--training-compute", "1e20")
    gateway.poll()
    client = gateway.openai(gateway.key("alice"))
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="dead-model", messages=HELLO)
    response = err.value.response
    assert response.status_code == 502
    assert "127.0.0.1:9" not in response.text and "DEAD_UPSTREAM_KEY" not in response.text
    assert response.json()["error"]["code"] == "upstream_error"
    assert int(response.headers["clearance-audit-index"]) >= 0


class CapturingUpstream:
    """A minimal OpenAI-compatible upstream that remembers what reached it."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.body: dict[str, object] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        self.headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.body = orjson.loads(body)
        reply = {
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": self.body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "ok"},
                }
            ],
        }
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": orjson.dumps(reply)})


def test_identity_comes_from_the_verified_person_never_the_client(
    gateway: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPTURE_UPSTREAM_KEY", "sk-upstream-secret")
    capture = CapturingUpstream()
    with serve_in_thread(capture, lifespan="off") as url:
        gateway.cli(
            "upstreams",
            "add",
            "cap",
            "--kind",
            "openai",
            "--base-url",
            url + "/v1",
            "--api-key-env",
            "CAPTURE_UPSTREAM_KEY",
        )
        gateway.cli(
            "models",
            "add",
            "cap-model",
            "--upstream",
            "cap",
            "--upstream-model",
            "provider-name-1",
            "--training-compute",
            "1e20",
        )
        gateway.poll()
        with httpx.Client(base_url=gateway.url) as http:
            r = http.post(
                "/v1/chat/completions",
                headers={"authorization": f"Bearer {gateway.key('alice')}", "x-user-id": "spoof"},
                json={"model": "cap-model", "messages": HELLO, "user": "spoofed-user"},
            )
    assert r.status_code == 200
    assert capture.headers["authorization"] == "Bearer sk-upstream-secret"
    assert "x-user-id" not in capture.headers
    assert capture.body["model"] == "provider-name-1"
    assert "user" not in capture.body
    pseudonym = str(capture.body["safety_identifier"])
    assert pseudonym.startswith("clr_") and "alice" not in pseudonym
    assert r.headers["clearance-model-served"] == "cap-model"
