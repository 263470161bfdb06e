"""The background process of `clearance serve`: the audit integrator and the housekeeping pass,
out of the serving workers' event loops and GILs.

Integrating (hashing entries into the tree, storing tiles, signing a checkpoint each second) and
the maintenance pass are bursts of Python work. Inside a serving worker they share its GIL with
the request path and show up as its tail latency; here they have a process of their own, and with
`--workers N` they run once instead of N times. The workers only append (group commit) and wait
for their entries to be durable: durability never depends on this process, which may lag or
restart (a checkpoint covers whatever is committed when it runs; see audit/integrator.py).

The process ends when `clearance serve` stops it (SIGTERM, after the workers have stopped: it
integrates what they appended last) or when its parent is gone (a kill -9 of `serve`).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from multiprocessing.process import BaseProcess
from pathlib import Path

from sqlalchemy.engine import Engine

from clearance import maintenance
from clearance.audit.service import AuditLog
from clearance.config import Settings, load_settings
from clearance.errors import ClearanceError
from clearance.store import connect

log = logging.getLogger("clearance.background")

# Set for the serving workers of `clearance serve`: this process runs their background work.
ENV = "CLEARANCE_BACKGROUND"
PARENT_CHECK_SECONDS = 0.5


def start(config: Path) -> BaseProcess:
    """Start the background process for the instance configured in `config`."""
    # spawn: a fresh interpreter, not a fork of the CLI with its imports and threads.
    context = multiprocessing.get_context("spawn")
    process = context.Process(
        target=run, args=(str(config), os.getpid()), name="clearance-background", daemon=False
    )
    process.start()
    return process


def stop(process: BaseProcess, timeout: float = 30.0) -> None:
    if process.is_alive():
        process.terminate()  # SIGTERM: a graceful stop, with a last integration
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()


def run(config: str, parent: int) -> None:
    settings = load_settings(config)
    logging.basicConfig(level=logging.WARNING)
    engine = connect(settings.database_url)
    audit = AuditLog(engine, settings.audit)
    try:
        asyncio.run(_serve(settings, engine, audit, parent))
        try:
            audit.integrate()  # what the workers appended last, before they stopped
        except ClearanceError as exc:  # durable all the same: the next integrator signs it
            log.warning("last integration failed: %s", exc.detail)
    finally:
        audit.close()
        engine.dispose()


async def _serve(settings: Settings, engine: Engine, audit: AuditLog, parent: int) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await asyncio.to_thread(audit.start)
    async with maintenance.running(settings, engine, audit):
        while not stopping.is_set() and os.getppid() == parent:
            try:
                await asyncio.wait_for(stopping.wait(), PARENT_CHECK_SECONDS)
            except TimeoutError:
                pass
