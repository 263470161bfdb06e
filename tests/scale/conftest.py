"""One cluster for the scale tests: 3 `clearance serve` processes and 2 `clearance worker`
processes on one PostgreSQL database of their own and one Redis, the demo upstream behind them,
each process started by the real CLI as a deployment starts it (docs/deploy.md).

The Redis is a private `redis-server` on a free port, so that a test can stop it and start it
again without disturbing any other test. Limits are stored before the nodes start (each loads
them at start-up): alice@demo.test 60 requests a minute, dana@demo.test 3.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
import redis
from typer.testing import CliRunner, Result

from clearance.cli.app import app as cli_app
from clearance.config import Settings, load_settings
from clearance.demo.run import free_port, seed
from clearance.demo.upstream import demo_upstream_app
from clearance.net.serving import serve_in_thread
from tests.conftest import postgres_database
from tests.gateway.conftest import make_instance
from tests.gateway.nodes import DEADLINE, nodes
from tests.portal.conftest import spawn_worker, stop_workers
from tests.portal.review_cases import Instance

NODES = 3
# The job a killed worker held waits out its lease ([jobs] lease_seconds: WORKER_LEASE_SECONDS,
# which a live worker renews) before the other takes it over. The time limit is the production
# default: a verification on a loaded machine has been seen to take over 15 s.
LIMITS = {"alice@demo.test": 60, "dana@demo.test": 3}
REQUIRE_REDIS = os.environ.get("CLEARANCE_REQUIRE_REDIS") == "1"


class RedisServer:
    """A `redis-server` of the test's own on a free port, keeping nothing on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # As the machine's own Redis runs, on another port (docs/deploy.md: nothing kept).
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        args += ["no", "--dir", str(self.directory), "--logfile", str(self.directory / "log")]
        self.process = subprocess.Popen(["redis-server", *args])
        deadline = time.monotonic() + DEADLINE
        while not self.answers():
            assert self.process.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None

    def answers(self) -> bool:
        client = self.client()
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=1)


@dataclass
class Cluster:
    settings: Settings
    config: Path
    nodes: list[str]  # the base URL of each `clearance serve`
    workers: list[subprocess.Popen[bytes]]  # each `clearance worker`, leader of its group
    redis: RedisServer
    keys: dict[str, str]  # each demo persona's API key
    db: Instance  # the database and the audit log, read directly
    # One connection pool per SDK for all its clients (and one for the rest): a pool of its own
    # per client would load the system's CA certificates again each time (0.1 s, several times
    # that on a loaded machine).
    http: httpx.Client = field(default_factory=httpx.Client)
    openai_http: Any = field(default_factory=openai.DefaultHttpxClient)
    anthropic_http: Any = field(default_factory=anthropic.DefaultHttpxClient)

    def openai(self, node: str, key: str) -> openai.OpenAI:
        """The official OpenAI SDK pointed at one node."""
        return openai.OpenAI(
            base_url=node + "/v1", api_key=key, max_retries=0, http_client=self.openai_http
        )

    def anthropic(self, node: str, key: str) -> anthropic.Anthropic:
        """The official Anthropic SDK pointed at one node."""
        return anthropic.Anthropic(
            base_url=node, api_key=key, max_retries=0, http_client=self.anthropic_http
        )

    def cli(self, *args: str) -> Result:
        """An operator's `clearance` command on this instance (in this process: the database
        is all it shares with the nodes)."""
        done = CliRunner().invoke(cli_app, [*args, "--config", str(self.config)])
        assert done.exit_code == 0, f"clearance {' '.join(args)} failed: {done.output}"
        return done

    def close(self) -> None:
        for pool in (self.http, self.openai_http, self.anthropic_http):
            pool.close()
        self.db.close()


def _require_redis_server() -> None:
    if shutil.which("redis-server"):
        return
    if REQUIRE_REDIS:
        pytest.fail("redis-server required (CLEARANCE_REQUIRE_REDIS=1) but not installed")
    warnings.warn(  # noqa: B028 - shown in the summary so a skipped module is never silent
        pytest.PytestWarning("redis-server not installed: skipping the scale tests")
    )
    pytest.skip("redis-server not installed")


def _configure(config: Path, redis_url: str) -> Settings:
    """The settings a deployment of many nodes sets (docs/deploy.md), on this test's Redis."""
    with config.open("a") as toml:
        toml.write(f'\n[redis]\nurl = "{redis_url}"\n\n[limits]\n')
        toml.write('controlled_without_redis = "closed"\nuncontrolled_without_redis = "worker"\n')
        toml.write('\n[jobs]\nlocal_worker = "off"\n')
    return load_settings(config, environ={})


@pytest.fixture(scope="module")
def cluster(_postgres_template: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    _require_redis_server()
    directory = tmp_path_factory.mktemp("cluster")
    with ExitStack() as stack:
        url = stack.enter_context(postgres_database(_postgres_template))
        server = RedisServer(directory / "redis")
        server.start()
        stack.callback(server.stop)
        upstream = stack.enter_context(
            serve_in_thread(demo_upstream_app(chunk_delay=0.0), lifespan="off")
        )
        # Refusal summaries every second: a test waits for its refusals' entries.
        _, config = make_instance(url, directory / "instance", "refusal_summary_seconds = 1")
        settings = _configure(config, server.url)
        db = Instance(settings)
        keys = seed(db.engine, settings, upstream)
        cluster = Cluster(settings, config, [], [], server, keys, db)
        stack.callback(cluster.close)
        for email, rpm in LIMITS.items():
            cluster.cli("limits", "set", "--user", email, "--rpm", str(rpm))
        cluster.nodes = stack.enter_context(nodes(config, NODES, workers=1))
        # Started last, they load their models while the first tests run.
        cluster.workers = [spawn_worker(config) for _ in range(2)]
        stack.callback(stop_workers, cluster.workers)
        yield cluster
