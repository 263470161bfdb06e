"""`clearance demo` (what `make demo` runs): the product comes up on its embedded default, the
printed keys work through the official SDK, and the printed operator paths exist."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai

from clearance.config import load_settings
from clearance.demo.run import free_port
from clearance.portal.operators import ADMIN, REVIEWER, roles_of
from clearance.principals.org_admins import administered_org
from clearance.principals.service import get_user
from clearance.store import connect


def test_demo_serves_the_personas_and_names_its_operator_surfaces(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        demo = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "clearance"),
                "demo",
                "--port",
                str(port),
                "--dir",
                "elsewhere/d",
            ],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert demo.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the demo did not start"
            time.sleep(0.2)
        printed = log.read_text()
        keys = dict(re.findall(r"(\w+@demo\.test)\s+(sk-clr-\S+)", printed))
        assert set(keys) >= {"alice@demo.test", "sven@demo.test", "nina@demo.test"}
        with openai.OpenAI(base_url=base + "/v1", api_key=keys["sven@demo.test"]) as client:
            served = client.chat.completions.with_raw_response.create(
                model="mythos-5", messages=[{"role": "user", "content": "Hello"}]
            )
        assert served.parse().model == "fable-4"  # a fallback, named (no licence covers him)
        assert f"{base}/portal/review" in printed and "admin tokens create" in printed
        assert f"{base}/console" in printed and f"{base}/portal/org" in printed
        assert httpx.get(base + "/admin/api/models", timeout=5).status_code == 401
        # Everything printed and configured names the port and directory asked for.
        config = Path("elsewhere/d/clearance.toml")
        assert f"--config {config}" in printed and "clearance-demo" not in printed
        settings = load_settings(tmp_path / config)
        assert settings.gateway.port == port
        assert settings.gateway.portal_url == f"{base}/portal"  # sign-in links, 451 `Link`

        engine = connect(settings.database_url)
        try:
            with engine.connect() as conn:
                alice = get_user(conn, "alice@demo.test")
                assert {REVIEWER, ADMIN} <= set(roles_of(conn, alice.id))
                erik = get_user(conn, "erik@demo.test")
                assert administered_org(conn, erik.id) == "Acme Corp"
        finally:
            engine.dispose()
    finally:
        demo.terminate()
        demo.wait(timeout=30)
