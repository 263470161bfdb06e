"""Prometheus metrics for one worker (a registry of its own, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0)
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
        self.invalidation_listening = Gauge(
            "clearance_invalidation_listening",
            "1 while this worker's LISTEN connection is up; 0 while it polls only",
            registry=self.registry,
        )

        # Label children by value: `labels()` costs a lock and a lookup on every request.
        self._decided: dict[tuple[str, str], Counter] = {}

    def decided(self, effect: str, rule: str) -> None:
        child = self._decided.get((effect, rule))
        if child is None:
            child = self._decided[(effect, rule)] = self.decisions.labels(effect, rule)
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
