"""`clearance identity csca load FILE` and `clearance identity csca list`: the CSCA master list
that chip verifications trust (docs/identity.md "Chip evidence")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from clearance.audit.service import AuditLog
from clearance.cli.context import ConfigOption, JsonOption, open_runtime, operator
from clearance.cli.principals import identity_app
from clearance.errors import InvalidInput
from clearance.identity import csca
from clearance.jobs.chip import pa_policy

csca_app = typer.Typer(
    help="CSCA master lists: the trust anchors of chip verification.", no_args_is_help=True
)


def register(_app: typer.Typer) -> None:
    identity_app.add_typer(csca_app, name="csca")


def _record(v: csca.MasterListVersion) -> dict[str, object]:
    return {
        "version": v.version,
        "digest": v.digest,
        "format": v.format.value,
        "certificates": v.certificates,
        "skipped": list(v.skipped),
        "signers": list(v.signers),
        "loaded_by": v.loaded_by,
        "loaded_at": v.loaded_at.isoformat(),
    }


@csca_app.command("load")
def csca_load(
    file: Annotated[Path, typer.Argument(metavar="FILE", dir_okay=False)],
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Put a master list in force (PEM bundle, PKD LDIF or ICAO CMS master list); audited."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read the master list {file}: {exc.strerror}") from None
    with open_runtime(config) as rt:
        log = AuditLog(rt.engine, rt.settings.audit)
        try:
            result = csca.load(
                rt.engine, log, data, actor=operator(), policy=pa_policy(rt.settings)
            )
        finally:
            log.close()
    v = result.version
    if as_json:
        typer.echo(
            json.dumps({**_record(v), "created": result.created, "audit_index": result.audit_index})
        )
        return
    if not result.created:
        typer.echo(f"CSCA master list: unchanged (version {v.version}, {v.digest[:16]})")
        return
    typer.echo(
        f"CSCA master list: version {v.version}, {v.certificates} certificates "
        f"({v.format.value}), {v.digest[:16]}; audit entry {result.audit_index}"
    )
    for why in v.skipped:
        typer.echo(f"  left out: {why}")


@csca_app.command("list")
def csca_list(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Every loaded version; the newest is in force."""
    with open_runtime(config) as rt, rt.engine.connect() as conn:
        found = csca.versions(conn)
    if as_json:
        typer.echo(json.dumps([_record(v) for v in found]))
        return
    for v in found:
        typer.echo(
            f"{v.version}\t{v.loaded_at:%Y-%m-%d %H:%M}\t{v.format.value}\t"
            f"{v.certificates} certificates\t{v.digest[:16]}\t{v.loaded_by}"
        )
