"""Prometheus metrics of the node: each worker counts its own, and a scrape of any worker renders
every worker's.

In one process (tests, `clearance serve --workers 1`) the metrics live in a registry of this
object's own, so tests can build many apps. Under `clearance serve --workers N` (N > 1) each
worker writes its values to files of its own in the run's private directory (prometheus_client's
multi-process mode, `multiprocess.py`), and a scrape merges them: counters and histograms are
summed over every worker that ever ran in this run, the dead included, so a killed worker's
counts are neither lost nor counted twice by its replacement.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from clearance.decision import multiprocess
from clearance.errors import ConfigError

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0)
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        if multiprocess_dir is not None and not getattr(
            prometheus_values.ValueClass, "_multiprocess", False
        ):
            # prometheus_client picks the mode once, when it is first imported.
            raise ConfigError(
                "PROMETHEUS_MULTIPROC_DIR was set after prometheus_client was imported"
            )
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        # What a scrape renders: this worker's registry, or every worker's files merged.
        self.scraped = self.registry
        if multiprocess_dir is not None:
            self.scraped = CollectorRegistry()
            MultiProcessCollector(self.scraped, path=str(multiprocess_dir))  # type: ignore[no-untyped-call]
        self.decisions = Counter(
            "clearance_decisions",
            "Policy decisions by effect and deciding rule",
            ["effect", "rule"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "clearance_rejections",
            "Requests refused before a decision (auth, input, unknown model)",
            ["status"],
            registry=self.registry,
        )
        self.added = Histogram(
            "clearance_added_latency_seconds",
            "Time from request received to upstream request sent (auth, policy)",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.upstream = Histogram(
            "clearance_upstream_latency_seconds",
            "Time from upstream request sent to its response headers",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.audit_wait = Histogram(
            "clearance_audit_wait_seconds",
            "Time a request waited for its audit entry to be durable",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.audit_batch = Histogram(
            "clearance_audit_batch_size",
            "Entries per audit group commit",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "clearance_upstream_errors",
            "Upstream failures by kind",
            ["kind"],
            registry=self.registry,
        )
        self.limit_refusals = Counter(
            "clearance_limit_refusals",
            "Requests refused by a limit (scope: user, org, key; limit: rpm, tpm, concurrent), "
            "or because the limits could not be counted (limit: unavailable)",
            ["scope", "limit"],
            registry=self.registry,
        )
        self.guard_checks = Counter(
            "clearance_guard_checks",
            "Misuse-guard checks by stage (prompt, output) and outcome (clear, flagged, error)",
            ["stage", "outcome"],
            registry=self.registry,
        )
        self.guard_latency = Histogram(
            "clearance_guard_latency_seconds",
            "Time one misuse-guard check took, windows included",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.invalidation_notices = Counter(
            "clearance_invalidation_notices",
            "State changes announced to this worker by PostgreSQL NOTIFY, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.invalidation_lag = Histogram(
            "clearance_invalidation_lag_seconds",
            "Time from an announced change (the writer's clock) to this worker dropping its cache",
            buckets=_LAG_BUCKETS,
            registry=self.registry,
        )
        # Gauges across workers: "livesum" over the workers alive now (a dead worker's value is
        # dropped, multiprocess.sweep), so `clearance_invalidation_listening <
        # clearance_workers` says some worker polls only. Not "max": one listening worker would
        # hide the others; not "all": a pid label per worker, new at every restart.
        self.invalidation_listening = Gauge(
            "clearance_invalidation_listening",
            "Workers whose LISTEN connection is up (1 per worker; 0 while it polls only)",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.workers = Gauge(
            "clearance_workers",
            "Serving workers alive on this node",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.workers.set(1)

        # Label children by value: `labels()` costs a lock and a lookup on every request.
        self._decided: dict[tuple[str, str], Counter] = {}

    def decided(self, effect: str, rule: str) -> None:
        child = self._decided.get((effect, rule))
        if child is None:
            child = self._decided[(effect, rule)] = self.decisions.labels(effect, rule)
        child.inc()

    def add_collectors(self, collectors: Iterable[Collector]) -> None:
        """Figures read at scrape time by whichever worker answers (the job queue, from the
        database): rendered once, never merged across workers."""
        for collector in collectors:
            self.scraped.register(collector)

    def render(self) -> bytes:
        """The scrape (blocking: files, and the database for added collectors)."""
        if self.multiprocess_dir is not None:
            multiprocess.sweep(self.multiprocess_dir)
        return generate_latest(self.scraped)

    def close(self) -> None:
        """This worker is stopping: its gauges leave the node's figures now."""
        if self.multiprocess_dir is not None:
            multiprocess.retire(self.multiprocess_dir, os.getpid())
