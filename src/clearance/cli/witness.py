"""`clearance witness keygen | serve`: a C2SP tlog-witness of our own."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from clearance.audit.cosignature import Cosigner, generate_witness_key
from clearance.audit.keys import NoteVerifier
from clearance.cli.context import ConfigOption, open_runtime
from clearance.errors import ConfigError, InvalidInput
from clearance.net.serving import server_options

witness_app = typer.Typer(
    help="A C2SP tlog-witness: cosigns checkpoints that extend what it saw.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(witness_app, name="witness")


@witness_app.command("keygen")
def keygen(
    name: Annotated[str, typer.Argument(help="The witness's name, e.g. witness.example.org/w1.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the private key (0600).")],
) -> None:
    """Write a new witness key to --out; print its verifier key (C2SP vkey, type 0x04)."""
    try:
        text = generate_witness_key(name)
    except InvalidInput as exc:
        raise ConfigError(exc.detail) from None
    # Created 0600 and never overwritten: a witness that loses its key loses its history.
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{out} exists; a witness key is never overwritten") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    typer.echo(Cosigner.from_text(text).verifier.text)


@witness_app.command("status")
def status(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """How far each of this log's witnesses ([[audit.witnesses]]) has cosigned."""
    import orjson

    from clearance.audit.witnessing import witness_status

    with open_runtime(config) as rt:
        size, witnesses = witness_status(rt.engine, rt.settings.audit)
        quorum = rt.settings.audit.witness_quorum
    if as_json:
        document = {
            "checkpoint_size": size,
            "quorum": quorum,
            "witnesses": [
                {
                    "name": w.name,
                    "url": w.url,
                    "cosigned_size": w.cosigned_size,
                    "cosigned_at": None if w.cosigned_at is None else w.cosigned_at.isoformat(),
                    "behind": w.behind,
                }
                for w in witnesses
            ],
        }
        typer.echo(orjson.dumps(document).decode())
        return
    if not witnesses:
        typer.echo("no witnesses configured ([[audit.witnesses]] in the configuration)")
        return
    typer.echo(f"newest checkpoint: size {size}; quorum {quorum} of {len(witnesses)}")
    for w in witnesses:
        when = "never" if w.cosigned_at is None else w.cosigned_at.isoformat(timespec="seconds")
        typer.echo(f"  {w.name:<40} cosigned {w.cosigned_size:>10}  {w.behind:>8} behind  {when}")


@witness_app.command("serve")
def serve(
    key: Annotated[Path, typer.Option("--key", help="The witness's private key file.")],
    data: Annotated[Path, typer.Option("--data", help="Directory for the witness's state.")],
    log: Annotated[
        list[str],
        typer.Option("--log", help="A log to witness: ORIGIN=VKEY (repeat for more logs)."),
    ],
    port: Annotated[int, typer.Option("--port")] = 8090,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
) -> None:
    """Serve POST /add-checkpoint (C2SP tlog-witness) for the logs given with --log."""
    from clearance.witness.server import Witness, WitnessState, parse_log_option, witness_app

    cosigner = Cosigner.load(key)
    logs: dict[str, list[NoteVerifier]] = {}
    for value in log:
        try:
            origin, verifier = parse_log_option(value)
        except (ValueError, InvalidInput) as exc:
            raise ConfigError(f"--log {value!r}: {exc}") from None
        logs.setdefault(origin, []).append(verifier)
    state = WitnessState(data / "witness.sqlite3")
    typer.echo(f"witness {cosigner.verifier.text} on http://{host}:{port}", err=True)
    try:
        uvicorn.run(
            witness_app(Witness(cosigner, logs, state)), **server_options(host=host, port=port)
        )
    finally:
        state.close()
