"""The queue's figures for /metrics, read from the database when scraped: how many jobs are queued
and running, and the latency of finished jobs (`job_latency`).

Why from the database rather than from `clearance worker`: workers run on hosts of their own and
listen on nothing; the table is shared, so any gateway worker on any node reads the whole
cluster's queue with two small queries (an indexed count, and one row per bucket). The latency
is counted in the transaction that ends the job (`observe`, called by service.complete and
service.reject under the attempt's fence), so a job is counted once, however many runners
tried it, and the counts survive the purge of finished jobs. Every node reports the same
figures: aggregate them across nodes with `max`, not `sum`.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from clearance.jobs.models import JobKind, JobState
from clearance.jobs.tables import job_latency, jobs
from clearance.store import reading

log = logging.getLogger("clearance.jobs")

# Queued to finished: seconds when the queue is empty (a verification is ~2 s of CPU), minutes
# when enrolments queue up, up to the back-off of retries (10 s doubling, max_attempts).
LATENCY_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


def observe(conn: Connection, kind: JobKind, outcome: JobState, seconds: float) -> None:
    """Count one finished job in its bucket, in the caller's transaction."""
    seconds = max(0.0, seconds)
    row = {
        "kind": kind.value,
        "outcome": outcome.value,
        "bucket": bisect.bisect_left(LATENCY_BUCKETS, seconds),  # le: the first bound >= it
        "jobs": 1,
        "seconds": seconds,
    }
    target = [job_latency.c.kind, job_latency.c.outcome, job_latency.c.bucket]
    bump = {"jobs": job_latency.c.jobs + 1, "seconds": job_latency.c.seconds + seconds}
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
        job_latency
    )
    conn.execute(insert.values(row).on_conflict_do_update(index_elements=target, set_=bump))


class QueueCollector(Collector):
    """Read by whichever worker answers a scrape (never merged across workers)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        try:
            with reading(self.engine) as conn:
                depth = {
                    str(state): int(count)
                    for state, count in conn.execute(
                        sa.select(jobs.c.state, sa.func.count())
                        .where(jobs.c.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]))
                        .group_by(jobs.c.state)
                    ).all()
                }
                buckets = [
                    (str(kind), str(outcome), int(bucket), int(count), float(seconds))
                    for kind, outcome, bucket, count, seconds in conn.execute(
                        sa.select(job_latency)
                    ).all()
                ]
        except SQLAlchemyError as exc:  # the rest of the scrape still answers
            log.warning("reading the job queue for /metrics failed: %s", type(exc).__name__)
            return
        queue = GaugeMetricFamily(
            "clearance_job_queue_depth",
            "Jobs queued (due or in back-off) and running, in the whole cluster's queue",
            labels=["state"],
        )
        for state in (JobState.QUEUED, JobState.RUNNING):
            queue.add_metric([state.value], float(depth.get(state.value, 0)))
        yield queue
        yield _latency(buckets)


def _latency(rows: list[tuple[str, str, int, int, float]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "clearance_job_latency_seconds",
        "Time from a job queued to its end (done or rejected), retries included",
        labels=["kind", "outcome"],
    )
    series: dict[tuple[str, str], list[tuple[int, int, float]]] = {}
    for kind, outcome, bucket, count, seconds in rows:
        series.setdefault((kind, outcome), []).append((bucket, count, seconds))
    for labels, counts in sorted(series.items()):
        per_bucket = [0] * (len(LATENCY_BUCKETS) + 1)
        for bucket, count, _ in counts:
            per_bucket[min(bucket, len(LATENCY_BUCKETS))] += count
        cumulative, running = [], 0
        for bound, count in zip([*map(str, LATENCY_BUCKETS), "+Inf"], per_bucket, strict=True):
            running += count
            cumulative.append((bound, float(running)))
        family.add_metric(list(labels), cumulative, sum(s for _, _, s in counts))
    return family
