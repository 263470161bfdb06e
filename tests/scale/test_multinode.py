"""Day one at scale with real parts (issue 15, item 5): 3 `clearance serve` nodes and 2 `clearance
worker` processes on one PostgreSQL and one Redis (conftest.py), the official OpenAI and
Anthropic SDKs as the clients.

- a suspension and a revocation reach every node, each announced by NOTIFY;
- a person's limit of 60 requests a minute holds across the 3 nodes, exactly;
- Redis stopped mid-run: controlled models fail closed, uncontrolled ones are counted per worker
  (never unlimited), and every refusal is in the audit log;
- a worker killed with -9 mid-job: the other completes the job, once.

Every wait is for an event (a refusal, an entry, a job's state), bounded by a deadline; no test
asserts how long anything took: bench/invalidation.py and bench/limits.py measure that.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import redis
import sqlalchemy as sa

from clearance.identity.tables import identity_cases
from clearance.jobs import service as jobs
from clearance.jobs.models import FINISHED, Job, JobState
from clearance.jobs.tables import jobs as jobs_table
from clearance.principals.models import User
from clearance.principals.service import add_user, create_key, get_user
from tests.gateway.nodes import new_key, wait_until
from tests.gateway.windows import redis_clock, wait_for_room
from tests.portal import camera
from tests.portal.conftest import WORKER_LEASE_SECONDS, WORKER_TIME_LIMIT

from .conftest import LIMITS, Cluster

pytestmark = pytest.mark.postgres  # one xdist worker runs them all, in order (tests/conftest.py)

HELLO: Any = [{"role": "user", "content": "hi"}]
SDKs = tuple[openai.OpenAI, anthropic.Anthropic]


def served(call: Callable[[], object]) -> int:
    """The HTTP status an SDK call ended with: 200, or the status of the error it raised."""
    try:
        call()
    except (openai.APIStatusError, anthropic.APIStatusError) as exc:
        return exc.status_code
    return 200


def chat(client: openai.OpenAI, model: str) -> Callable[[], object]:
    return lambda: client.chat.completions.create(model=model, messages=HELLO)


def message(client: anthropic.Anthropic, model: str) -> Callable[[], object]:
    return lambda: client.messages.create(model=model, max_tokens=16, messages=HELLO)


def answers(call: Callable[[], object], status: int) -> Callable[[], bool]:
    return lambda: served(call) == status


def sdks(cluster: Cluster, key: str) -> list[SDKs]:
    """Both SDKs on each node, with `key`."""
    return [(cluster.openai(n, key), cluster.anthropic(n, key)) for n in cluster.nodes]


def notices(cluster: Cluster, node: str, kind: str) -> float:
    """How many change notices of `kind` the node's worker has heard (its /metrics)."""
    for line in cluster.http.get(f"{node}/metrics").text.splitlines():
        if line.startswith(f'clearance_invalidation_notices_total{{kind="{kind}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def summarised(cluster: Cluster, reason: str) -> int:
    """Refusals of `reason` in the audit log's summaries so far."""
    summaries = cluster.db.entries(type="refusal_summary", reason=reason)
    return sum(int(str(e["count"])) for e in summaries)


def minutes(store: redis.Redis, who: User) -> list[int]:
    """The person's request counts in Redis, one per minute counted (keys expire in two)."""
    return [int(store.get(k) or 0) for k in store.scan_iter(f"*:user:{who.id}:r:*")]


def person(cluster: Cluster, email: str) -> User:
    with cluster.db.engine.connect() as conn:
        return get_user(conn, email)


def test_a_suspension_and_a_revocation_reach_every_node(cluster: Cluster) -> None:
    key_id, key = new_key(cluster.settings, "luis@demo.test")  # fallback off: refused, not rerouted
    clients = sdks(cluster, key)
    wait_until(
        "every node listens",
        lambda: all(
            cluster.http.get(f"{n}/healthz").json()["invalidation"] == "listen"
            for n in cluster.nodes
        ),
    )
    for oa, claude in clients:
        assert served(chat(oa, "fable-5")) == served(message(claude, "fable-5")) == 200

    heard = [notices(cluster, n, "catalog") for n in cluster.nodes]
    cluster.cli("models", "suspend", "fable-5", "--reason", "drill")
    for (oa, claude), node in zip(clients, cluster.nodes, strict=True):
        wait_until(f"{node} refuses fable-5", answers(chat(oa, "fable-5"), 451))
        assert served(message(claude, "fable-5")) == 451
    # Each node heard the suspension announced: pushed, not found by its poll.
    assert all(
        notices(cluster, n, "catalog") > before
        for n, before in zip(cluster.nodes, heard, strict=True)
    )

    cluster.cli("models", "resume", "fable-5", "--reason", "drill over")
    for oa, _ in clients:
        wait_until("fable-5 is served again", answers(chat(oa, "fable-5"), 200))

    heard = [notices(cluster, n, "principals") for n in cluster.nodes]
    cluster.cli("keys", "revoke", key_id)
    for oa, claude in clients:
        wait_until("the key is refused", answers(chat(oa, "fable-5"), 401))
        with pytest.raises(anthropic.AuthenticationError):
            message(claude, "fable-5")()
    assert all(
        notices(cluster, n, "principals") > before
        for n, before in zip(cluster.nodes, heard, strict=True)
    )


def test_a_persons_limit_of_60_a_minute_holds_across_the_three_nodes(cluster: Cluster) -> None:
    """90 requests at once over 3 nodes, 2 SDKs and 3 keys of one person: exactly 60 served."""
    email, limit = "alice@demo.test", LIMITS["alice@demo.test"]
    with cluster.db.engine.begin() as conn:
        more = [create_key(conn, email, name=f"node{i}", allow_fallback=True)[1] for i in (1, 2)]
    clients = [
        (cluster.openai(n, k), cluster.anthropic(n, k))
        for n, k in zip(cluster.nodes, [cluster.keys[email], *more], strict=True)
    ]
    calls = [
        chat(oa, "fable-4") if i % 2 else message(claude, "fable-4")
        for i in range(30)
        for oa, claude in clients
    ]
    summaries = summarised(cluster, "limit.rpm.user")
    alice = person(cluster, email)
    store = cluster.redis.client()
    # One Redis minute for every request: a window that turned would start the count again.
    wait_for_room(20, redis_clock(store))
    with ThreadPoolExecutor(9) as pool:
        statuses = list(pool.map(served, calls))
    assert minutes(store, alice) == [limit], "one minute, 60 counted (else the room was too short)"
    assert (statuses.count(200), statuses.count(429)) == (limit, len(calls) - limit)
    for oa, claude in clients:  # every node counts in the same place
        with pytest.raises(openai.RateLimitError) as refused:
            chat(oa, "fable-4")()
        assert 1 <= int(refused.value.response.headers["retry-after"]) <= 60
        with pytest.raises(anthropic.RateLimitError):
            message(claude, "fable-4")()
    store.close()
    refusals = len(calls) - limit + 2 * len(clients)
    wait_until(
        "every refusal is in a summary",
        lambda: summarised(cluster, "limit.rpm.user") - summaries >= refusals,
    )
    assert summarised(cluster, "limit.rpm.user") - summaries == refusals


def test_redis_stopped_mid_run_fails_closed_for_controlled_models_per_worker_for_others(
    cluster: Cluster,
) -> None:
    email, limit = "dana@demo.test", LIMITS["dana@demo.test"]
    dana = person(cluster, email)
    clients = sdks(cluster, cluster.keys[email])
    summaries = summarised(cluster, "limit.rpm.user")
    # The per-worker counts that take over are in-process minutes, on this machine's clock.
    wait_for_room(15)
    assert served(chat(clients[0][0], "mythos-5")) == 200
    store = cluster.redis.client()
    assert minutes(store, dana) == [1]  # counted in Redis while it runs
    store.close()

    cluster.redis.stop()
    try:
        for oa, claude in clients:
            with pytest.raises(openai.InternalServerError) as closed:
                chat(oa, "mythos-5")()
            assert closed.value.status_code == 503
            assert closed.value.response.json()["error"]["code"] == "limits_unavailable"
            with pytest.raises(anthropic.InternalServerError) as closed_too:
                message(claude, "mythos-5")()
            assert closed_too.value.status_code == 503
            assert closed_too.value.response.json()["error"]["type"] == "api_error"
        for oa, claude in clients:  # each node's worker counts alone, to the person's limit
            statuses = [served(chat(oa, "fable-4")) for _ in range(limit)]
            statuses.append(served(message(claude, "fable-4")))
            assert statuses == [200] * limit + [429]
    finally:
        cluster.redis.start()

    closed_entries = cluster.db.entries(subject=dana.subject_id, reason="limits_unavailable")
    assert [(e["outcome"], e["status"]) for e in closed_entries] == [("rejected", 503)] * 6
    wait_until(
        "the per-worker refusals are in summaries",
        lambda: summarised(cluster, "limit.rpm.user") - summaries >= len(clients),
    )
    assert summarised(cluster, "limit.rpm.user") - summaries == len(clients)
    # Redis back: every node counts in it again (after its one-second pause).
    for oa, _ in clients:
        wait_until("controlled models are served again", answers(chat(oa, "mythos-5"), 200))


# --- a worker killed mid-job ----------------------------------------------------------------

EMAIL = "ada.rosenthal@example.org"
MODELS_LOADED = 180.0  # seconds a worker started with the cluster may take to load its models


def _job(cluster: Cluster, job_id: int) -> tuple[Job, str | None]:
    """The job, and the runner that holds (or last held) it: host:pid."""
    with cluster.db.engine.connect() as conn:
        locked_by = conn.execute(
            sa.select(jobs_table.c.locked_by).where(jobs_table.c.id == job_id)
        ).scalar_one()
        return jobs.get(conn, job_id), locked_by


def _state_in(cluster: Cluster, job_id: int, states: Collection[JobState]) -> Callable[[], bool]:
    return lambda: _job(cluster, job_id)[0].state in states


def _owner(cluster: Cluster, runner: str | None) -> subprocess.Popen[bytes]:
    """The `clearance worker` whose runner `runner` is (its process group)."""
    assert runner is not None
    group = os.getpgid(int(runner.rsplit(":", 1)[1]))
    [worker] = [w for w in cluster.workers if w.pid == group]
    return worker


def test_a_worker_killed_mid_job_leaves_it_to_the_other_which_completes_it_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    victim, survivor = cluster.workers
    inputs = camera.inputs(tmp_path, datetime.now(UTC).date())
    with cluster.db.engine.begin() as conn:
        user = add_user(conn, EMAIL, name=inputs.declared_name)
    files = ["--document", str(inputs.document), "--selfie", str(inputs.selfie)]
    # The survivor pauses while the job is queued, so that the victim takes it.
    os.killpg(survivor.pid, signal.SIGSTOP)
    try:
        queued = cluster.cli("identity", "verify", EMAIL, *files, "--no-wait", "--json")
        job_id = int(json.loads(queued.output)["job"])
        running = _state_in(cluster, job_id, {JobState.RUNNING})
        wait_until("a worker runs the job", running, timeout=MODELS_LOADED)
    finally:
        os.killpg(survivor.pid, signal.SIGCONT)
    assert _owner(cluster, _job(cluster, job_id)[1]) is victim
    os.killpg(victim.pid, signal.SIGKILL)  # the worker and its runner, mid-job
    victim.wait()
    assert _job(cluster, job_id)[0].state is JobState.RUNNING  # claimed, by nobody alive

    # The survivor takes it over once the lease passes, and runs it to its end.
    done = _state_in(cluster, job_id, FINISHED)
    wait_until("the job ends", done, timeout=WORKER_LEASE_SECONDS + 5 + WORKER_TIME_LIMIT)
    job, runner = _job(cluster, job_id)
    assert (job.state, job.attempts) == (JobState.DONE, 2), job.last_error
    assert job.case is not None and _owner(cluster, runner) is survivor

    with cluster.db.engine.connect() as conn:
        cases = conn.execute(
            sa.select(identity_cases.c.id).where(identity_cases.c.user_id == user.id)
        ).all()
    assert [c.id for c in cases] == [job.case]  # one result
    assert len(cluster.db.entries(subject=user.subject_id, method="document")) == 1  # one entry
