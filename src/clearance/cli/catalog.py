"""`clearance upstreams ...` and `clearance models ...`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from clearance.catalog import actions, service
from clearance.catalog.classification import Thresholds, classify, parse_pair, preview, propose
from clearance.catalog.models import Classification, UpstreamKind, model_json, upstream_json
from clearance.cli.context import ConfigOption, JsonOption, open_runtime
from clearance.errors import InvalidInput
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


@upstreams_app.command("list")
def upstreams_list(json_out: JsonOption = False, config: ConfigOption = None) -> None:
    """Every upstream, with the models that use it."""
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        catalog = service.load_catalog(conn)
    if json_out:
        typer.echo(json.dumps([upstream_json(u) for u in catalog.upstreams.values()], indent=2))
        return
    table = Table("name", "kind", "base url", "key from", "models")
    for u in catalog.upstreams.values():
        used = [m.id for m in catalog.models.values() if m.upstream == u.name]
        table.add_row(u.name, u.kind.value, u.base_url, u.api_key_env or "-", ", ".join(used))
    Console().print(table)


@upstreams_app.command("update")
def upstreams_update(
    name: str,
    kind: Annotated[UpstreamKind | None, typer.Option("--kind")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url")] = None,
    api_key_env: Annotated[
        str | None, typer.Option("--api-key-env", help="Environment variable holding its key.")
    ] = None,
    clear_api_key_env: Annotated[
        bool, typer.Option("--clear-api-key-env", help="Send no credential.")
    ] = False,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Change an upstream's kind, base URL or credential variable."""
    with open_runtime(config) as rt:
        result = actions.update_upstream(
            rt.engine,
            rt.record,
            name,
            kind=kind,
            base_url=base_url,
            api_key_env=api_key_env,
            clear_api_key_env=clear_api_key_env,
        )
    _answer(result, json_out, f"upstream {name} updated -> {result['base_url']}")


@upstreams_app.command("remove")
def upstreams_remove(name: str, json_out: JsonOption = False, config: ConfigOption = None) -> None:
    """Remove an upstream no model uses (refused, naming the models, otherwise)."""
    with open_runtime(config) as rt:
        result = actions.remove_upstream(rt.engine, rt.record, name)
    _answer(result, json_out, f"upstream {name} removed")


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
        rt.record("model.add", model.id, model_json(model))
    typer.echo(f"model {model.id}: {model.classification.value} — {model.rationale}")


@models_app.command("list")
def models_list(json_out: JsonOption = False, config: ConfigOption = None) -> None:
    """Every model with its classification, rationale, status and fallbacks."""
    with open_runtime(config) as rt, reading(rt.engine) as conn:
        catalog = service.load_catalog(conn, Thresholds.configured(rt.settings))
    rows = [model_json(m) for m in catalog.models.values()]
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("id", "upstream", "class", "by", "status", "fallbacks", "rationale")
    for m in catalog.models.values():
        status = m.state
        if m.retired or m.suspended:
            status += f": {m.retired_reason if m.retired else m.suspended_reason}"
        elif m.restore is not None:
            status += f": {json.dumps(m.restore.as_json())}"
        table.add_row(
            m.id,
            f"{m.upstream}:{m.upstream_model}",
            m.classification.value,
            m.classification_rule or m.classification_source,
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
    model_id: Annotated[str, typer.Argument(metavar="ID")],
    percent: Annotated[
        int | None,
        typer.Option("--percent", help="Restore to this stable share of people first (1-100)."),
    ] = None,
    orgs: Annotated[
        str | None, typer.Option("--orgs", help="Restore to these organisations' members: A,B.")
    ] = None,
    internal: Annotated[
        bool, typer.Option("--internal", help="Restore to members of [policy] internal_orgs.")
    ] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why; recorded.")] = None,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Lift a suspension: for everyone, or in phases to a cohort first, then wider."""
    names = tuple(n.strip() for n in orgs.split(",") if n.strip()) if orgs is not None else ()
    if orgs is not None and not names:
        raise InvalidInput("--orgs needs at least one organisation name")
    with open_runtime(config) as rt:
        result = actions.resume(
            rt.engine,
            rt.record,
            model_id,
            percent=percent,
            orgs=names,
            internal_orgs=rt.settings.policy.internal_orgs if internal else None,
            reason=reason,
        )
    cohort = result["restore"]
    to = "everyone" if cohort is None else f"a cohort: {json.dumps(cohort)}"
    _answer(result, json_out, f"model {model_id} resumed for {to}")


@models_app.command("update")
def models_update(
    model_id: Annotated[str, typer.Argument(metavar="MODEL")],
    fallback: Annotated[
        list[str] | None,
        typer.Option("--fallback", help="The new fallback list, in order; repeatable."),
    ] = None,
    no_fallbacks: Annotated[
        bool, typer.Option("--no-fallbacks", help="Clear the fallback list.")
    ] = False,
    upstream: Annotated[str | None, typer.Option("--upstream")] = None,
    upstream_model: Annotated[str | None, typer.Option("--upstream-model")] = None,
    input_price: Annotated[
        str | None,
        typer.Option("--input-price", metavar="AMOUNT", help="Per million input tokens."),
    ] = None,
    output_price: Annotated[
        str | None,
        typer.Option("--output-price", metavar="AMOUNT", help="Per million output tokens."),
    ] = None,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Change a model's fallbacks (kept acyclic, existing, not retired), upstream or prices."""
    if fallback and no_fallbacks:
        raise InvalidInput("give --fallback or --no-fallbacks, not both")
    fallbacks = () if no_fallbacks else tuple(fallback) if fallback else None
    with open_runtime(config) as rt:
        result = actions.update_model(
            rt.engine,
            rt.record,
            model_id,
            fallbacks=fallbacks,
            upstream=upstream,
            upstream_model=upstream_model,
            input_price=input_price,
            output_price=output_price,
        )
    _answer(result, json_out, f"model {model_id} updated")


@models_app.command("reclassify")
def models_reclassify(
    model_id: Annotated[str, typer.Argument(metavar="MODEL")],
    classification: Annotated[Classification, typer.Option("--classification")],
    rationale: Annotated[str, typer.Option("--rationale", help="Why; recorded and shown.")],
    evidence: Annotated[
        str | None, typer.Option("--evidence", help="A document reference or URL.")
    ] = None,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """An explicit classification decision: it wins over the training compute."""
    with open_runtime(config) as rt:
        result = actions.reclassify(
            rt.engine, rt.record, model_id, classification, rationale, evidence
        )
    _answer(result, json_out, f"model {model_id}: {classification.value} — {rationale}")


@models_app.command("retire")
def models_retire(
    model_id: Annotated[str, typer.Argument(metavar="MODEL")],
    reason: Annotated[str, typer.Option("--reason", help="Why; recorded and shown to users.")],
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Retire a model for good: refused to everyone, never a fallback. There is no un-retire."""
    with open_runtime(config) as rt:
        result = actions.retire(rt.engine, rt.record, model_id, reason)
    unlinked = result["unlinked_from"]
    assert isinstance(unlinked, list)
    note = f" (removed from the fallbacks of {', '.join(map(str, unlinked))})" if unlinked else ""
    _answer(result, json_out, f"model {model_id} retired: {reason}{note}")


@models_app.command("evidence")
def models_evidence(
    model_id: Annotated[str, typer.Argument(metavar="MODEL")],
    evals: Annotated[
        list[str] | None,
        typer.Option("--eval", metavar="NAME=SCORE", help="An evaluation score; repeatable."),
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Where the scores come from (a URL).")
    ] = None,
    parameters: Annotated[
        float | None, typer.Option("--parameters", "--params", metavar="N")
    ] = None,
    tokens: Annotated[float | None, typer.Option("--tokens", metavar="D")] = None,
    training_compute: Annotated[
        float | None,
        typer.Option("--training-compute", metavar="FLOP", help="A reported training compute."),
    ] = None,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Record classification evidence (evaluation scores; training compute, reported or 6·N·D
    from --parameters and --tokens) and classify the model again against the thresholds."""
    pairs = tuple(parse_pair(e, "--eval") for e in evals or ())
    with open_runtime(config) as rt:
        result = actions.record_evidence(
            rt.engine,
            rt.record,
            Thresholds.configured(rt.settings),
            model_id,
            evaluations=pairs,
            source=source,
            parameters=parameters,
            tokens=tokens,
            training_compute=training_compute,
        )
    rule = result["classification_rule"]
    _answer(result, json_out, f"model {model_id}: {result['classification']} by {rule}")


@models_app.command("thresholds")
def models_thresholds(
    compute: Annotated[
        float | None,
        typer.Option("--compute", metavar="FLOP", help="A proposed training-compute threshold."),
    ] = None,
    evals: Annotated[
        list[str] | None,
        typer.Option("--eval", metavar="NAME=T", help="A proposed evaluation threshold."),
    ] = None,
    drop_evals: Annotated[
        list[str] | None,
        typer.Option("--drop-eval", metavar="NAME", help="Propose removing a threshold."),
    ] = None,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Preview a threshold change: the models it would reclassify, from -> to and why. Nothing
    is applied: to apply it, change [policy] in the configuration (docs/catalog.md)."""
    with open_runtime(config) as rt:
        current = Thresholds.configured(rt.settings)
        proposed = propose(
            current,
            compute=compute,
            evaluations=[parse_pair(e, "--eval") for e in evals or ()],
            drop=drop_evals or (),
        )
        with reading(rt.engine) as conn:
            catalog = service.load_catalog(conn, current)
    changes = preview(catalog.models.values(), current, proposed)
    note = (
        "preview only, nothing applied: to apply, set [policy] controlled_compute_threshold and "
        "[[policy.eval_thresholds]] in the configuration and restart the workers"
    )
    if json_out:
        out = {
            "applied": False,
            "current": current.as_json(),
            "proposed": proposed.as_json(),
            "changes": [c.as_json() for c in changes],
            "note": note,
        }
        typer.echo(json.dumps(out, indent=2))
        return
    if not changes:
        typer.echo("no model would change classification")
    for c in changes:
        row = c.as_json()
        typer.echo(f"{row['model']}: {row['from']} -> {row['to']} ({row['to_rule']}: {row['why']})")
    typer.echo(note)


def _answer(result: dict[str, object], json_out: bool, text: str) -> None:
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(f"{text} (audit entry {result['audit_index']})")
