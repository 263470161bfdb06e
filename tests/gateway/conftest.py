"""A running Clearance: the demo upstream and a gateway, each a real uvicorn server on loopback,
seeded with the demo's personas, on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from clearance.app import Clearance, create_app
from clearance.cli.app import app as cli_app
from clearance.config import Settings, load_settings
from clearance.demo.run import free_port, seed
from clearance.demo.upstream import DemoUpstream, demo_upstream_app
from clearance.net.protocol import DeadlineProtocol
from clearance.net.serving import serve_in_thread
from clearance.principals.service import create_key
from clearance.setup import write_instance
from clearance.store import connect, migrate


@dataclass(frozen=True)
class Running:
    url: str
    upstream_url: str
    keys: dict[str, str]
    settings: Settings
    config_file: Path
    clients: list[openai.OpenAI | anthropic.Anthropic] = field(default_factory=list)
    app: Clearance | None = None

    def openai(self, key: str) -> openai.OpenAI:
        """The official OpenAI SDK pointed at this gateway (closed when the test ends)."""
        client = openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0)
        self.clients.append(client)
        return client

    def anthropic(self, key: str) -> anthropic.Anthropic:
        """The official Anthropic SDK pointed at this gateway (closed when the test ends)."""
        client = anthropic.Anthropic(base_url=self.url, api_key=key, max_retries=0)
        self.clients.append(client)
        return client

    def key(self, who: str) -> str:
        return self.keys[f"{who}@demo.test"]

    def strict_key(self, who: str) -> str:
        """A new key for this persona with fallback switched off."""
        engine = connect(self.settings.database_url)
        try:
            with engine.begin() as conn:
                _, secret = create_key(
                    conn, f"{who}@demo.test", name="strict", allow_fallback=False
                )
        finally:
            engine.dispose()
        return secret

    def cli(self, *args: str) -> Result:
        """Run a `clearance` command against this instance, in this process (the database is
        what the two share; test_sdks.py keeps a test that crosses a real process boundary)."""
        done = CliRunner().invoke(cli_app, [*args, "--config", str(self.config_file)])
        assert done.exit_code == 0, f"clearance {' '.join(args)} failed: {done.output}"
        return done

    def cli_process(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the real `clearance` command against this instance, in another process."""
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "clearance"),
                "--config",
                str(self.config_file),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"clearance {' '.join(args)} failed: {done.stderr}"
        return done

    def poll(self) -> set[str]:
        """Make the gateway poll for changes now instead of waiting for its poller."""
        assert self.app is not None
        return self.app.poll_from_thread()


@pytest.fixture
def demo_upstream() -> Iterator[tuple[DemoUpstream, str]]:
    app = demo_upstream_app(chunk_delay=0.0)
    with serve_in_thread(app, lifespan="off") as url:
        yield app, url


@pytest.fixture
def upstream_url(demo_upstream: tuple[DemoUpstream, str]) -> str:
    return demo_upstream[1]


def make_instance(db_url: str, directory: Path, gateway: str = "") -> tuple[Settings, Path]:
    """A fresh instance on `db_url`; `gateway`: TOML lines added to its [gateway] table."""
    write_instance(directory, origin="test.clearance.local/audit")
    config = directory / "clearance.toml"
    text = config.read_text().replace(
        'database_url = "sqlite:///clearance.db"', f'database_url = "{db_url}"'
    )
    for line in gateway.splitlines():
        key = line.partition("=")[0].strip()
        text, found = re.subn(rf"(?m)^{key} = .*$", line, text)
        if not found:
            text = text.replace("[gateway]\n", f"[gateway]\n{line}\n", 1)
    config.write_text(text)
    return load_settings(config, environ={}), config


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> tuple[Settings, Path]:
    return make_instance(db_url, tmp_path / "instance")


@pytest.fixture
def gateway(instance: tuple[Settings, Path], upstream_url: str) -> Iterator[Running]:
    settings, config = instance
    engine = connect(settings.database_url)
    migrate(engine)
    keys = seed(engine, settings, upstream_url)
    engine.dispose()
    app = create_app(settings)
    with serve_in_thread(app, http=DeadlineProtocol) as url:
        running = Running(url, upstream_url, keys, settings, config, app=app)
        yield running
        for client in running.clients:
            client.close()


@contextlib.contextmanager
def audit_writes_blocked(settings: Settings) -> Iterator[None]:
    """Hold the log head's write lock from another connection: every append waits."""
    url = settings.database_url
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        assert path is not None
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = connect(url)
    try:
        with engine.connect() as pg:
            pg.execute(sa.text("LOCK TABLE audit_head IN ACCESS EXCLUSIVE MODE"))
            try:
                yield
            finally:
                pg.rollback()
    finally:
        engine.dispose()


CLEARANCE = str(Path(sys.executable).parent / "clearance")


def start_serve(config: Path, *, workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    """`clearance serve` on a free port as a process of its own; returns it and its base URL
    once /healthz answers. The caller stops it."""
    server, base = spawn_serve(config, workers=workers)
    wait_serving(server, base)
    return server, base


def spawn_serve(config: Path, *, workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    """`clearance serve` on a free port, started: it answers once `wait_serving` returns."""
    port = free_port()
    server = subprocess.Popen(
        [
            CLEARANCE,
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env={**os.environ, "CLEARANCE_CONFIG": str(config)},
    )
    return server, f"http://127.0.0.1:{port}"


def wait_serving(server: subprocess.Popen[bytes], base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise AssertionError("clearance serve did not start")
        time.sleep(0.1)
