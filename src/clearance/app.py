"""The composition root: builds one worker's settings, stores and services, and mounts each
surface on them: the gateway (`/v1`, raw ASGI: the hot path), the portal, the operator API,
the audit routes, health and metrics. Surfaces depend on the domain services built here, never
on each other (tests/test_architecture.py)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from clearance import background, maintenance
from clearance.admin import admin_app
from clearance.audit import entries
from clearance.audit.keys import derived_key
from clearance.audit.routes import audit_app
from clearance.audit.service import AuditLog
from clearance.config import Settings, load_settings
from clearance.decision import multiprocess
from clearance.decision.metrics import Metrics
from clearance.decision.recorder import Recorder
from clearance.decision.service import DecisionService
from clearance.errors import ConfigError
from clearance.gateway.proxy import Proxy
from clearance.guard.service import Guard
from clearance.guard.strikes import Strikes
from clearance.identity import cip
from clearance.identity.vault import EvidenceVault
from clearance.integrations.forward_auth import forward_auth_app
from clearance.jobs.metrics import QueueCollector
from clearance.limits import service as limits
from clearance.net.client import ClientLocator
from clearance.net.responses import error_response
from clearance.openapi import openapi_json
from clearance.policy.state import DecisionState
from clearance.portal import portal_app
from clearance.portal.console import console_app
from clearance.portal.scim import scim_app
from clearance.store import connect, migrate
from clearance.store.listener import Listener
from clearance.store.versions import Notice

if TYPE_CHECKING:
    from clearance.integrations.envoy import ExtAuthzServer

log = logging.getLogger("clearance.app")
# How often a worker re-reads the version counters. Without a LISTEN connection (SQLite, or
# PostgreSQL with `database_listen = false` or while the listener reconnects) the poll is what
# carries every change: 4 times a second. Beside a healthy listener it is only the safety net for
# a notification lost unseen (a connection dead without an error, until TCP keepalive finds it):
# once a second, the bound DESIGN.md sets for that case, at a quarter of the reads.
POLL_SECONDS = 0.25
LISTENING_POLL_SECONDS = 1.0


class Clearance:
    """One worker's application. Build with `create_app(settings)`."""

    def __init__(
        self,
        settings: Settings,
        *,
        own_process: bool = False,
        background: bool = True,
        metrics_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        # A worker that is the whole process (`clearance serve`) may tune the process's GC.
        self.own_process = own_process
        # Whether this worker runs the audit integrator and the maintenance pass itself, or
        # the background process of `clearance serve` does (clearance/background.py).
        self.background = background
        self.engine = connect(settings.database_url)
        migrate(self.engine)
        self.state = DecisionState(settings, self.engine)
        self.audit = AuditLog(self.engine, settings.audit)
        # One of `clearance serve --workers N`'s workers writes its metrics to the run's directory
        # (decision/multiprocess.py), so that a scrape of any worker renders every worker's.
        self.metrics = Metrics(metrics_dir)
        self.metrics.add_collectors([QueueCollector(self.engine)])
        self.audit.sequencer.on_batch = self.metrics.audit_batch.observe
        recorder = Recorder(self.audit.sequencer, self.state.list_versions)
        guard, strikes = build_guard(settings, self.engine, self.audit)
        self.decisions = DecisionService(self.state, recorder, self.metrics, guard, strikes)
        self.proxy = Proxy(self.decisions)
        self.locator = ClientLocator(settings.gateway.trusted_proxies)
        self.web = Starlette(
            routes=[
                Route("/healthz", self.healthz),
                Route("/metrics", self.metrics_endpoint),
                Route("/openapi.json", openapi_json),
                Mount("/audit", app=audit_app(self.engine, settings.audit)),
                Mount("/portal", app=portal_app(settings, self.engine, self.audit, self.state)),
                Mount("/console", app=console_app(settings, self.engine, self.audit, self.state)),
                Mount("/admin/api", app=admin_app(settings, self.engine, self.audit)),
                Mount("/scim/v2", app=scim_app(settings, self.engine, self.audit)),
                Mount("/authz", app=forward_auth_app(self.decisions)),
            ],
            lifespan=self.lifespan,
            exception_handlers={HTTPException: not_found},
        )
        self._poller: asyncio.Task[None] | None = None
        self._poll_lock = asyncio.Lock()
        # Set by a notification or a (re)connected listener: poll now, not at the interval.
        self._changed = asyncio.Event()
        self._announced: dict[str, Notice] = {}  # per kind, the oldest notice not yet applied
        self.listener: Listener | None = None
        if settings.database_listen and self.engine.dialect.name == "postgresql":
            self.listener = Listener(
                self.engine, on_notice=self._notified, on_connect=self._changed.set
            )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cip_keys: cip.CipKeys | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await self.proxy(scope, receive, send)
            return
        # The portal, audit and operator APIs see the client and scheme trusted_proxies allow.
        await self.web(self.locator.rewrite(scope), receive, send)

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.state.load)
        self.decisions.limiter.reload(await asyncio.to_thread(limits.load_table, self.engine))
        await asyncio.to_thread(self.audit.start, integrator=self.background)
        # Which policy is in force from now on is itself a record (a policy change shows here).
        await asyncio.to_thread(
            self.audit.append,
            entries.admin_action(
                actor="gateway",
                action="policy.load",
                target=self.state.policy.engine.hash,
                details={"files": [p.name for p in self.settings.policy.files]},
            ),
        )
        await self.proxy.start()
        ext_authz = await self._serve_ext_authz()
        if self.own_process:
            settle_heap()
        self._poller = asyncio.create_task(self._poll_forever())
        listening = asyncio.create_task(self.listener.run()) if self.listener else None
        summaries = asyncio.create_task(self._flush_refusals_forever())
        addresses = self._record_addresses()
        try:
            if self.background:
                async with maintenance.running(self.settings, self.engine, self.audit):
                    yield
            else:
                yield
        finally:
            if ext_authz is not None:  # no new Checks; those in flight finish
                await ext_authz.stop()
            tasks = [t for t in (self._poller, listening, summaries, addresses) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.decisions.flush_refusals()  # a graceful stop loses no count
            await self.flush_addresses()  # nor an address seen
            await self.proxy.close()
            await asyncio.to_thread(self.audit.close)
            self.engine.dispose()
            self.metrics.close()

    async def _serve_ext_authz(self) -> ExtAuthzServer | None:
        """Envoy ext_authz (gRPC) beside the HTTP port when `[edge] ext_authz_port` is set: every
        worker binds it (SO_REUSEPORT), so the kernel spreads Envoy's connections over them."""
        if not self.settings.edge.ext_authz_port:
            return None
        from clearance.integrations.envoy import ExtAuthzServer  # grpc only where it serves

        server = ExtAuthzServer(self.decisions, self.settings)
        await server.start(self.settings.gateway.host, self.settings.edge.ext_authz_port)
        return server

    async def _poll_forever(self) -> None:
        """Pick up changes other processes made (suspensions, facts, keys): as soon as a
        notification announces one, else within the poll interval."""
        while True:
            listening = self.listener is not None and self.listener.connected
            self.metrics.invalidation_listening.set(listening)
            with contextlib.suppress(TimeoutError):
                interval = LISTENING_POLL_SECONDS if listening else POLL_SECONDS
                await asyncio.wait_for(self._changed.wait(), interval)
            # Cleared before the read: a notice arriving during the poll sets it for another.
            self._changed.clear()
            await self.poll_now()

    def _notified(self, notice: Notice) -> None:
        self.metrics.invalidation_notices.labels(notice.kind).inc()
        if self.state.versions.get(notice.kind, 0) < notice.version:  # not applied yet
            self._announced.setdefault(notice.kind, notice)
            self._changed.set()

    async def _flush_refusals_forever(self) -> None:
        """Refusals before authentication, as summary entries every refusal_summary_seconds."""
        while True:
            await asyncio.sleep(self.settings.gateway.refusal_summary_seconds)
            await self.decisions.flush_refusals()

    def _record_addresses(self) -> asyncio.Task[None] | None:
        """With `[cip] require` naming "ip": write the addresses this worker saw, every
        flush_seconds (identity/cip.py). Only the record's derived keys stay in memory."""
        if self.decisions.addresses is None:
            return None
        self._cip_keys = cip.CipKeys.of(EvidenceVault.open(self.settings.identity))
        return asyncio.create_task(self._flush_addresses_forever())

    async def _flush_addresses_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.cip.flush_seconds)
            await self.flush_addresses()

    async def flush_addresses(self) -> int:
        """Write the addresses seen since the last flush; a failed write keeps them for the
        next (merged with what is seen meanwhile), so none is lost to a database hiccup."""
        book = self.decisions.addresses
        if book is None or not len(book) or self._cip_keys is None:
            return 0
        seen = book.drain()
        try:
            return await asyncio.to_thread(cip.flush, self.engine, self._cip_keys, seen)
        except SQLAlchemyError as exc:
            log.warning("CIP addresses not written, kept for the next flush: %s", exc)
            for (user_id, _day, address), (first, last, count) in seen.items():
                book.merge(user_id, _day, address, first, last, count)
            return 0

    async def poll_now(self) -> set[str]:
        """One poll, exactly as the poller runs it every POLL_SECONDS; returns what changed.
        Polls never overlap: a change is applied, and its streams ended, once."""
        async with self._poll_lock:
            try:
                changed = await asyncio.to_thread(self.state.poll)
            except SQLAlchemyError as exc:  # a storage hiccup: keep the last good state
                log.warning("state poll failed: %s", exc)
                return set()
            if "limits" in changed:
                try:
                    table = await asyncio.to_thread(limits.load_table, self.engine)
                except SQLAlchemyError as exc:  # the next poll tries again
                    log.warning("limits reload failed: %s", exc)
                    self.state.versions.pop("limits", None)
                else:
                    self.decisions.limiter.reload(table)
            self._measure_lag(changed)
            if "catalog" in changed:
                models = self.state.catalog.models.values()
                suspended = {m.id for m in models if m.suspended or m.retired}
                ended = self.proxy.suspend_inflight(suspended)
                if ended:
                    log.warning("ended %d in-flight streams of suspended models", ended)
            return changed

    def _measure_lag(self, changed: set[str]) -> None:
        """The lag of each announced change now applied: from its commit to its cache drop."""
        now = time.time()
        for kind in changed:
            notice = self._announced.get(kind)
            if notice is not None and notice.version <= self.state.versions.get(kind, 0):
                del self._announced[kind]
                self.metrics.invalidation_lag.observe(max(0.0, now - notice.at))

    def poll_from_thread(self, timeout: float = 10.0) -> set[str]:
        """`poll_now` from another thread (a test, instead of waiting for the poller)."""
        if self._loop is None:
            raise RuntimeError("the gateway is not running")
        return asyncio.run_coroutine_threadsafe(self.poll_now(), self._loop).result(timeout)

    async def healthz(self, _request: Request) -> Response:
        # Which worker answered (its pid), and how it learns of changes: a client holding a
        # connection open (bench/invalidation.py) can tell the workers of a node apart.
        invalidation = "listen" if self.listener is not None and self.listener.connected else "poll"
        return JSONResponse(
            {
                "status": "ok",
                "versions": self.state.versions,
                "worker": os.getpid(),
                "invalidation": invalidation,
            }
        )

    async def metrics_endpoint(self, _request: Request) -> Response:
        # Off the event loop: the other workers' files, and the job queue from the database.
        body = await asyncio.to_thread(self.metrics.render)
        return PlainTextResponse(body, media_type="text/plain; version=0.0.4; charset=utf-8")


async def not_found(_request: Request, exc: Exception) -> Response:
    """A path no surface serves: JSON in the audit and operator APIs' error shape, not text."""
    assert isinstance(exc, HTTPException)
    code = "method_not_allowed" if exc.status_code == 405 else "not_found"
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


def build_guard(
    settings: Settings, engine: Engine, audit: AuditLog
) -> tuple[Guard | None, Strikes | None]:
    """The misuse guard when `[guard] kind` is set: its classifier (a bad setting fails start-up),
    and the strikes it counts per person, their excerpts sealed in the evidence vault."""
    if not settings.guard.enabled:
        return None, None
    guard = Guard(settings.guard, derived_key(settings.audit.signing_key_file, "guard-digest"))
    try:
        vault: EvidenceVault | None = EvidenceVault.open(settings.identity)
    except ConfigError as exc:
        log.warning("no evidence vault (%s): flagged excerpts are not kept", exc.detail)
        vault = None
    return guard, Strikes(engine, audit, settings.guard, vault)


def create_app(settings: Settings) -> Clearance:
    return Clearance(settings)


def app_from_environment() -> Clearance:
    """Factory for `uvicorn --factory` workers: the config path arrives in CLEARANCE_CONFIG."""
    settings = load_settings(os.environ.get("CLEARANCE_CONFIG"))
    # `clearance serve` runs the integrator and housekeeping in a process of their own.
    elsewhere = os.environ.get(background.ENV) == "process"
    # Set by `clearance serve --workers N` (N > 1) before the workers start.
    shared = os.environ.get(multiprocess.ENV)
    return Clearance(
        settings,
        own_process=True,
        background=not elsewhere,
        metrics_dir=Path(shared) if shared else None,
    )


# Young-generation threshold of the serving worker (CPython's default is 700 allocations).
GC_YOUNG_THRESHOLD = 20_000


def settle_heap() -> None:
    """Once a worker has loaded its state: move everything alive into the permanent generation
    (`gc.freeze`), so no collection walks the catalog, the policy and the imported modules again,
    and collect the young generation less often. Measured with bench/gateway.py at 32
    connections: the cyclic collector's full passes over ~10^6 start-up objects were half of
    the p99 (63 -> 32 ms with the freeze, 25 ms with the threshold too)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
