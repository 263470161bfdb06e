"""The LiteLLM hooks (clearance.integrations.litellm): called directly against a real Clearance,
and in a real LiteLLM proxy (`litellm[proxy]` in a venv of its own, created on first use under
~/.cache; skipped with the reason when it cannot be installed), the openai SDK as the client."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import openai
import orjson
import pytest
import sqlalchemy as sa

from clearance.audit.tables import audit_entries
from clearance.demo.run import free_port
from clearance.demo.upstream import DemoUpstream
from clearance.integrations import litellm as hook
from clearance.store import connect
from tests.gateway.conftest import Running

SRC = Path(__file__).resolve().parents[2] / "src"
LITELLM = "litellm[proxy]==1.108.7"
# Every package of that venv, pinned with its hashes (uv pip compile --generate-hashes).
REQUIREMENTS = Path(__file__).with_name("litellm-requirements.txt")
VENV = Path(
    os.environ.get("CLEARANCE_LITELLM_VENV")
    or Path.home() / ".cache" / "clearance-tests" / "litellm-1.108.7"
)
HELLO: Any = [{"role": "user", "content": "hello"}]


class FakeRequest:
    """What custom_auth reads of LiteLLM's (Starlette's) request."""

    def __init__(self, body: dict[str, Any], path: str = "/v1/chat/completions") -> None:
        self._body = orjson.dumps(body)
        self.url = SimpleNamespace(path=path)
        self.method = "POST"
        self.headers = {"user-agent": "test"}

    async def body(self) -> bytes:
        return self._body


@pytest.fixture
def clearance_at(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def point(url: str) -> None:
        monkeypatch.setenv(hook.CLEARANCE_URL, url)
        monkeypatch.setattr(hook, "_client", None)

    yield point


def _auth(key: str, model: str) -> Any:
    async def run() -> Any:
        try:
            return await hook.user_api_key_auth(
                FakeRequest({"model": model, "messages": HELLO}), key
            )
        finally:
            if hook._client is not None:
                await hook._client.aclose()
                hook._client = None

    return asyncio.run(run())


def test_the_hooks_ask_clearance_and_route_to_the_served_model(
    gateway: Running, clearance_at: Any
) -> None:
    clearance_at(gateway.url)
    alice = _auth(gateway.key("alice"), "mythos-5")
    decision = alice["metadata"]["clearance"]
    assert decision["x-clearance-model-served"] == "mythos-5"
    assert alice["user_id"].startswith("clr_") and gateway.key("alice") not in str(alice)
    assert decision["x-clearance-audit-index"].isdigit()

    sven = _auth(gateway.key("sven"), "mythos-5")
    served = sven["metadata"]["clearance"]["x-clearance-model-served"]
    assert served != "mythos-5" and sven["metadata"]["clearance"]["x-clearance-decision"] == (
        "fallback"
    )
    key = SimpleNamespace(metadata=sven["metadata"])
    data = asyncio.run(hook.pre_call(key, {"model": "mythos-5", "messages": HELLO}))
    assert data["model"] == served
    # A request whose model changed after the check is refused, never routed.
    with pytest.raises(hook.Refusal) as changed:
        asyncio.run(hook.pre_call(key, {"model": "fable-5x"}))
    assert changed.value.status == 403
    with pytest.raises(hook.Refusal):  # no decision: custom_auth was not configured
        asyncio.run(hook.pre_call(SimpleNamespace(metadata={}), {"model": "fable-4"}))

    with pytest.raises(hook.Refusal) as refused:
        _auth(gateway.strict_key("sven"), "mythos-5")
    assert refused.value.status == 451
    assert 'rel="blocked-by"' in refused.value.headers["link"]
    assert refused.value.headers["clearance-audit-index"].isdigit()
    with pytest.raises(hook.Refusal) as unknown:
        _auth("clr_not_a_key", "mythos-5")
    assert unknown.value.status == 401


def test_clearance_down_is_a_503(clearance_at: Any) -> None:
    clearance_at(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(hook.Refusal) as down:
        _auth("clr_whoever", "mythos-5")
    assert down.value.status == 503


@pytest.fixture(scope="session")
def litellm_binary() -> Path:
    """`litellm` from a venv of its own (its pins are not ours), created once per machine."""
    binary = VENV / "bin" / "litellm"
    marker = VENV / ".installed"
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with (VENV.parent / f"{VENV.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers wait for the one installing
        wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
        if marker.exists() and marker.read_text() == wanted and binary.exists():
            return binary
        shutil.rmtree(VENV, ignore_errors=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=120)
            subprocess.run(
                [str(VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                 "--require-hashes", "--no-deps", "-r", str(REQUIREMENTS)],
                check=True, timeout=600, capture_output=True,
            )  # fmt: skip
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            shutil.rmtree(VENV, ignore_errors=True)
            detail = getattr(exc, "stderr", b"") or b""
            pytest.skip(f"cannot install {LITELLM} into {VENV}: {exc} {detail[-500:]!r}")
        marker.write_text(wanted)
    return binary


@contextlib.contextmanager
def litellm_proxy(binary: Path, clearance: str, upstream: str, directory: Path) -> Iterator[str]:
    directory.mkdir(parents=True, exist_ok=True)
    models = "".join(
        f"""  - model_name: {name}
    litellm_params:
      model: openai/{name}
      api_base: {upstream}/v1
      api_key: UPSTREAM-CREDENTIAL
"""
        for name in ("mythos-5", "fable-5", "fable-4")
    )
    config = directory / "litellm.yaml"
    config.write_text(
        f"""model_list:
{models}
general_settings:
  custom_auth: clearance.integrations.litellm.user_api_key_auth
litellm_settings:
  callbacks: ["clearance.integrations.litellm.proxy_handler_instance"]
  num_retries: 0
  telemetry: false
"""
    )
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(directory),
        "PYTHONPATH": str(SRC),
        hook.CLEARANCE_URL: clearance,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the price list at start
        "LITELLM_TELEMETRY": "False",
        # LiteLLM refuses to start without one; custom_auth decides every request all the same.
        "LITELLM_MASTER_KEY": "sk-" + secrets.token_hex(32),
    }
    log = directory / "litellm.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=directory,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/health/liveliness", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"litellm did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _entries(gw: Running) -> list[dict[str, Any]]:
    engine = connect(gw.settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(audit_entries.c.entry).order_by(audit_entries.c.idx))
            return [orjson.loads(raw) for (raw,) in rows]
    finally:
        engine.dispose()


# The proxy asks Clearance over HTTP, whichever database is behind it: one database is enough
# for the half-minute it takes LiteLLM to start (the gateway's own tests run both).
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_real_litellm_proxy_enforces_clearances_decision(
    gateway: Running,
    demo_upstream: tuple[DemoUpstream, str],
    litellm_binary: Path,
    tmp_path: Path,
) -> None:
    upstream = demo_upstream[0]
    with litellm_proxy(litellm_binary, gateway.url, gateway.upstream_url, tmp_path) as url:

        def client(key: str) -> openai.OpenAI:
            made = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
            gateway.clients.append(made)
            return made

        before = len(_entries(gateway))
        reply = client(gateway.key("alice")).chat.completions.create(
            model="mythos-5", messages=HELLO
        )
        assert "mythos-5" in reply.model
        seen = upstream.seen[-1]
        assert orjson.loads(seen.body)["model"] == "mythos-5"
        assert seen.headers["authorization"] == "Bearer UPSTREAM-CREDENTIAL"

        raw = client(gateway.key("sven")).chat.completions.with_raw_response.create(
            model="mythos-5", messages=HELLO
        )
        served = orjson.loads(upstream.seen[-1].body)["model"]
        assert served in {"fable-5", "fable-4"}  # the fallback, asked of the upstream
        assert raw.headers["x-clearance-model-served"] == served
        assert raw.headers["x-clearance-decision"] == "fallback"
        assert raw.headers["clearance-audit-index"].isdigit()
        # LiteLLM names the model asked for in the answer; the header names the one served.
        assert raw.parse().choices[0].message.content

        count = len(upstream.seen)
        with pytest.raises(openai.APIStatusError) as refused:
            client(gateway.strict_key("sven")).chat.completions.create(
                model="mythos-5", messages=HELLO
            )
        assert refused.value.status_code == 451
        assert 'rel="blocked-by"' in refused.value.response.headers["link"]
        assert refused.value.response.headers["clearance-audit-index"].isdigit()
        with pytest.raises(openai.AuthenticationError):
            client("clr_not_a_key").chat.completions.create(model="mythos-5", messages=HELLO)
        assert len(upstream.seen) == count  # the refused never reached the upstream

        # Every decision has its entry: alice's allow, sven's fallback, the 451.
        decided = [e for e in _entries(gateway)[before:] if e.get("effect")]
        assert [(e["effect"], e["model_served"]) for e in decided] == [
            ("allow", "mythos-5"),
            ("fallback", served),
            ("deny", None),
        ]
