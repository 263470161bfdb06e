"""`clearance serve`, `clearance worker` and `clearance demo`."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from clearance.cli.context import ConfigOption
from clearance.config import Settings, config_path, load_settings
from clearance.errors import ConfigError
from clearance.net.protocol import DeadlineProtocol
from clearance.net.serving import server_options


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("worker")(worker)
    app.command("demo")(demo)


def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option("--host", metavar="H")] = None,
    port: Annotated[int | None, typer.Option("--port", metavar="P")] = None,
    workers: Annotated[int | None, typer.Option("--workers", metavar="N")] = None,
    ext_authz_port: Annotated[
        int | None,
        typer.Option(
            "--ext-authz-port",
            metavar="P",
            help="Also serve Envoy ext_authz (gRPC) on this port ([edge] ext_authz_port).",
        ),
    ] = None,
    local_worker: Annotated[
        bool | None,
        typer.Option(
            "--worker/--no-worker",
            help="Run a verification worker beside the HTTP workers ([jobs] local_worker; "
            "default: on SQLite only).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the gateway (OpenAI + Anthropic APIs), /audit, /healthz and /metrics.

    With --ext-authz-port (or [edge] ext_authz_port) also Envoy's ext_authz Check (gRPC)."""
    path = config_path(config, os.environ).resolve()
    # Each worker reads its settings again: the options that concern it go in the environment.
    if host:
        os.environ["CLEARANCE_GATEWAY_HOST"] = host
    if ext_authz_port is not None:
        os.environ["CLEARANCE_EDGE_EXT_AUTHZ_PORT"] = str(ext_authz_port)
    settings = load_settings(path)  # fail here, not in every worker, if the file is wrong
    os.environ["CLEARANCE_CONFIG"] = str(path)  # read by each worker's app factory
    if settings.edge.ext_authz_port:
        _check_free(settings.gateway.host, settings.edge.ext_authz_port)
    from clearance import background  # not at import: `clearance --help` stays light
    from clearance.decision import multiprocess
    from clearance.jobs.worker import start_local, stop_local
    from clearance.store import connect, migrate

    # The schema first, once, before the background process and the workers open the database:
    # else the integrator may look for its tables before a worker has created them.
    engine = connect(settings.database_url)
    try:
        migrate(engine)
    finally:
        engine.dispose()

    # The audit integrator and housekeeping run beside the workers, not in them.
    os.environ[background.ENV] = "process"
    helper = background.start(path)
    # Document verifications run in a worker, never in the HTTP workers (clearance/jobs).
    runs_jobs = _local_worker(settings) if local_worker is None else local_worker
    jobs = start_local(path) if runs_jobs else None
    # uvicorn stops gracefully on SIGTERM, then re-raises it with the handler found at start:
    # this one, so that the background process is stopped (and integrates what the workers
    # appended last) before `serve` exits, instead of the default handler killing `serve` first.
    previous = signal.signal(signal.SIGTERM, _stopped)
    count = workers or settings.gateway.workers
    # Several workers: each writes its metrics to this run's own directory, which a scrape of any
    # one merges (decision/multiprocess.py). Made here, before the workers import
    # prometheus_client, and after the background process and the jobs worker started: they
    # have no metrics to share. One worker keeps them in memory.
    shared = multiprocess.create() if count > 1 else None
    if shared is not None:
        os.environ[multiprocess.ENV] = str(shared)
    else:
        os.environ.pop(multiprocess.ENV, None)
    try:
        _serve(settings, host, port, count)
    finally:
        if shared is not None:
            multiprocess.remove(shared)
        if jobs is not None:
            stop_local(jobs, settings.jobs.time_limit_seconds + 5.0)
        background.stop(helper)
        signal.signal(signal.SIGTERM, previous)


def _local_worker(settings: Settings) -> bool:
    choice = settings.jobs.local_worker
    return choice == "on" or (choice == "auto" and settings.database_url.startswith("sqlite"))


def worker(
    config: ConfigOption = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            metavar="N",
            min=1,
            help="Jobs run at once, each in a process of its own ([jobs] concurrency).",
        ),
    ] = None,
) -> None:
    """Run queued document verifications (OCR, face match, liveness) until stopped."""
    path = config_path(config, os.environ).resolve()
    settings = load_settings(path)  # a wrong file fails here, once, not in every runner
    from clearance.jobs.worker import run
    from clearance.store import connect, migrate

    engine = connect(settings.database_url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    run(str(path), concurrency)


def _check_free(host: str, port: int) -> None:
    """The workers bind the ext_authz port with SO_REUSEPORT, which another process's socket
    with the option (a Clearance still running) would silently share: bind it once plainly
    first, so a port in use stops `serve` with a message instead."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # A listener still fails the bind; connections in TIME_WAIT from a last run do not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"--ext-authz-port {port}: cannot bind {host}:{port}: {exc}") from exc


def _stopped(signum: int, _frame: object) -> None:
    raise SystemExit(0)  # asked to stop, and stopped gracefully


def _serve(settings: Settings, host: str | None, port: int | None, workers: int) -> None:
    uvicorn.run(
        "clearance.app:app_from_environment",
        **server_options(
            factory=True,
            host=host or settings.gateway.host,
            port=port or settings.gateway.port,
            workers=workers,
            loop="uvloop",
            http=DeadlineProtocol,
            timeout_graceful_shutdown=30,
            # A slow client may hold a connection only so long before its request is complete.
            timeout_keep_alive=15,
        ),
    )


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Demo data directory (recreated on each run).")
    ] = Path("clearance-demo"),
    port: Annotated[int, typer.Option("--port")] = 8080,
) -> None:
    """Run the whole product on demo data: a demo upstream, models, personas, and the gateway."""
    from clearance.demo.run import run_demo

    run_demo(directory, port)
