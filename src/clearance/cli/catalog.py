"""`clearance upstreams ...` and `clearance models ...`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from clearance.catalog import service
from clearance.catalog.classification import classify
from clearance.catalog.models import Classification, Model, UpstreamKind
from clearance.cli.context import ConfigOption, JsonOption, open_runtime
from clearance.store import reading

upstreams_app = typer.Typer(help="Model providers Clearance forwards to.", no_args_is_help=True)
models_app = typer.Typer(
    help="The model catalog: classification, fallbacks, kill switch.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(upstreams_app, name="upstreams")
    app.add_typer(models_app, name="models")


@upstreams_app.command("add")
def upstreams_add(
    name: str,
    kind: Annotated[UpstreamKind, typer.Option("--kind", help="API the upstream speaks.")],
    base_url: Annotated[str, typer.Option("--base-url", help="e.g. https://api.openai.com/v1")],
    api_key_env: Annotated[
        str | None, typer.Option("--api-key-env", help="Environment variable holding its key.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Register an upstream. Its credential is read from the environment, never stored."""
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            up = service.add_upstream(conn, name, kind, base_url, api_key_env)
        rt.record("upstream.add", up.name, {"kind": up.kind.value, "base_url": up.base_url})
    typer.echo(f"upstream {up.name} ({up.kind.value}) -> {up.base_url}")


@models_app.command("add")
def models_add(
    model_id: Annotated[str, typer.Argument(metavar="ID")],
    upstream: Annotated[str, typer.Option("--upstream")],
    upstream_model: Annotated[str | None, typer.Option("--upstream-model")] = None,
    training_compute: Annotated[
        float | None, typer.Option("--training-compute", metavar="FLOP")
    ] = None,
    params: Annotated[float | None, typer.Option("--params", metavar="N")] = None,
    tokens: Annotated[float | None, typer.Option("--tokens", metavar="D")] = None,
    classification: Annotated[Classification | None, typer.Option("--classification")] = None,
    rationale: Annotated[str | None, typer.Option("--rationale")] = None,
    fallback: Annotated[
        list[str] | None, typer.Option("--fallback", help="Fallback target, in order; repeatable.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Add a model. An explicit classification wins; else compute above the threshold controls."""
    with open_runtime(config) as rt:
        result = classify(
            threshold=rt.settings.policy.controlled_compute_threshold,
            explicit=classification,
            rationale=rationale,
            training_compute=training_compute,
            params=params,
            tokens=tokens,
        )
        with rt.engine.begin() as conn:
            model = service.add_model(
                conn,
                model_id,
                upstream=upstream,
                upstream_model=upstream_model,
                classification=result,
                explicit=classification,
                fallbacks=tuple(fallback or ()),
            )
        rt.record("model.add", model.id, _model_json(model))
    typer.echo(f"model {model.id}: {model.classification.value} — {model.rationale}")


@models_app.command("list")
def models_list(json_out: JsonOption = False, config: ConfigOption = None) -> None:
    """Every model with its classification, rationale, status and fallbacks."""
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        catalog = service.load_catalog(conn)
    rows = [_model_json(m) for m in catalog.models.values()]
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("id", "upstream", "class", "status", "fallbacks", "rationale")
    for m in catalog.models.values():
        status = f"suspended: {m.suspended_reason}" if m.suspended else "active"
        table.add_row(
            m.id,
            f"{m.upstream}:{m.upstream_model}",
            m.classification.value,
            status,
            " -> ".join(m.fallbacks),
            m.rationale,
        )
    Console().print(table)


@models_app.command("suspend")
def models_suspend(
    model_id: Annotated[str, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option("--reason", help="Why; recorded and shown to users.")],
    config: ConfigOption = None,
) -> None:
    """Kill switch: serve this model to nobody, on every worker, within a second."""
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            model = service.suspend(conn, model_id, reason)
        rt.record("model.suspend", model.id, {"reason": reason})
    typer.echo(f"model {model.id} suspended: {reason}")


@models_app.command("resume")
def models_resume(
    model_id: Annotated[str, typer.Argument(metavar="ID")], config: ConfigOption = None
) -> None:
    """Lift a suspension."""
    with open_runtime(config) as rt:
        with rt.engine.begin() as conn:
            model = service.resume(conn, model_id)
        rt.record("model.resume", model.id, {})
    typer.echo(f"model {model.id} resumed")


def _model_json(m: Model) -> dict[str, object]:
    return {
        "id": m.id,
        "upstream": m.upstream,
        "upstream_model": m.upstream_model,
        "classification": m.classification.value,
        "explicit": m.explicit_classification is not None,
        "rationale": m.rationale,
        "training_compute": m.training_compute,
        "status": "suspended" if m.suspended else "active",
        "suspended_reason": m.suspended_reason,
        "fallbacks": list(m.fallbacks),
    }
