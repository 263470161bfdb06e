"""Load for the auditor: a served audit log with its integrator running and writer threads
appending in batches, on any database URL. Shared by the tests and bench/reliability.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from clearance.audit.routes import audit_app
from clearance.audit.service import AuditLog
from clearance.config import AuditSettings
from clearance.net.serving import serve_in_thread
from clearance.store import connect
from tests.reliability.logs import entry


@contextmanager
def served_log_under_load(
    url: str, settings: AuditSettings, writers: int = 2, batch: int = 16
) -> Iterator[tuple[str, AuditLog]]:
    """Yield (base URL of /audit, the log) while `writers` threads append `batch` at a time."""
    engine = connect(url)
    log = AuditLog(engine, settings)
    log.start()
    stop = threading.Event()

    def write(w: int) -> None:
        seq = 0
        while not stop.is_set():
            log.append_many([entry(f"load{w}", seq + k) for k in range(batch)])
            seq += batch
            stop.wait(0.002)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    try:
        for t in threads:
            t.start()
        with serve_in_thread(audit_app(engine), lifespan="off") as base:
            yield base, log
    finally:
        stop.set()
        for t in threads:
            t.join()
        log.close()
        engine.dispose()
