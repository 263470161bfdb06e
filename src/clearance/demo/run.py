"""`clearance demo`: the product on demo data: a demo upstream, the personas, a gateway."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import uvicorn
from sqlalchemy.engine import Engine

from clearance.app import create_app
from clearance.audit import entries
from clearance.audit.cosignature import Cosigner, generate_witness_key
from clearance.audit.keys import load_signer
from clearance.audit.service import AuditLog
from clearance.catalog import service as catalog
from clearance.catalog.classification import classify
from clearance.catalog.models import Classification, UpstreamKind
from clearance.config import Settings, load_settings
from clearance.demo.upstream import demo_upstream_app
from clearance.errors import Conflict
from clearance.jobs.worker import start_local, stop_local
from clearance.net.serving import server_options
from clearance.portal import operators
from clearance.principals import org_admins
from clearance.principals import service as principals
from clearance.principals.models import Method, UsPerson
from clearance.setup import write_instance
from clearance.store import connect, migrate
from clearance.witness.server import Witness, WitnessState, witness_app


@dataclass(frozen=True, slots=True)
class Persona:
    email: str
    name: str
    who: str
    nationalities: tuple[str, ...] = ()
    us_person: UsPerson = UsPerson.NONE
    org: str | None = None


ERIK = "erik@demo.test"  # Acme Corp's employee and, in the demo, its org admin
PERSONAS = (
    Persona("alice@demo.test", "Alice Walker", "verified US citizen", ("US",), UsPerson.CITIZEN),
    Persona("sven@demo.test", "Sven Lindqvist", "verified Swedish national", ("SE",)),
    Persona(
        "dana@demo.test", "Dana Berg", "dual US/Swedish citizen", ("SE", "US"), UsPerson.CITIZEN
    ),
    Persona(
        "luis@demo.test",
        "Luis Ortega",
        "US permanent resident (Mexican national)",
        ("MX",),
        UsPerson.LPR,
    ),
    Persona(
        ERIK,
        "Erik Holm",
        "Swedish engineer at Acme Corp (licence for fable-5)",
        ("SE",),
        org="Acme Corp",
    ),
    Persona("nina@demo.test", "Nina Novak", "unverified user"),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(engine: Engine, settings: Settings, upstream_url: str) -> dict[str, str]:
    """The demo catalog and personas; returns each persona's API key."""
    threshold = settings.policy.controlled_compute_threshold
    keys: dict[str, str] = {}
    records: list[bytes] = []
    with engine.begin() as conn:
        catalog.add_upstream(conn, "demo", UpstreamKind.OPENAI, upstream_url + "/v1", None)
        catalog.add_model(
            conn,
            "fable-4",
            upstream="demo",
            upstream_model=None,
            explicit=None,
            classification=classify(threshold=threshold, training_compute=2.1e25),
        )
        catalog.add_model(
            conn,
            "fable-5",
            upstream="demo",
            upstream_model=None,
            explicit=None,
            classification=classify(threshold=threshold, params=1.2e12, tokens=3.0e13),
            fallbacks=("fable-4",),
        )
        catalog.add_model(
            conn,
            "mythos-5",
            upstream="demo",
            upstream_model=None,
            explicit=Classification.CONTROLLED,
            classification=classify(
                threshold=threshold,
                explicit=Classification.CONTROLLED,
                rationale="frontier cyber-offence evaluation exceeded the operator's threshold",
            ),
            fallbacks=("fable-5",),
        )
        principals.add_org(conn, "Acme Corp", "US")
        principals.add_licence(
            conn,
            org="Acme Corp",
            model_id="fable-5",
            nationalities=["SE"],
            number="D1234567",
            expires=date.today() + timedelta(days=365),
        )
        for p in PERSONAS:
            user = principals.add_user(conn, p.email, name=p.name, org=p.org)
            if p.nationalities:
                principals.set_identity(
                    conn,
                    user.id,
                    nationalities=p.nationalities,
                    us_person=p.us_person,
                    method=Method.DOCUMENT,
                    source="attestation",
                    expires=None,
                    max_age_days=settings.policy.verification_max_age_days,
                )
            key, secret = principals.create_key(conn, p.email, name="demo", allow_fallback=True)
            keys[p.email] = secret
            records.append(
                entries.admin_action(
                    actor="demo",
                    action="demo.persona",
                    target=user.subject_id,
                    subject=user.subject_id,
                    details={
                        "nationalities": list(p.nationalities),
                        "us_person": p.us_person.value,
                        "key_id": key.id,
                    },
                )
            )
    # The seeding is an operator action like any other: it goes into the log first.
    records.insert(
        0,
        entries.admin_action(
            actor="demo",
            action="demo.catalog",
            target="catalog",
            details={"models": ["fable-4", "fable-5", "mythos-5"], "licence": "D1234567"},
        ),
    )
    log = AuditLog(engine, settings.audit)
    try:
        log.append_many(records)
    finally:
        log.close()
    return keys


def make_staff(engine: Engine, settings: Settings, officer: str, org_admin: str) -> None:
    """The demo's compliance officer holds the reviewer and console admin roles; an Acme Corp
    employee administers its KYB page (/portal/org)."""
    log = AuditLog(engine, settings.audit)
    try:
        with engine.begin() as conn:
            user_id = principals.get_user(conn, officer).id
            org = principals.get_user(conn, org_admin).org_name
            assert org is not None
            org_admins.grant(conn, org, org_admin, actor="demo")
        for role in (operators.REVIEWER, operators.ADMIN):
            operators.grant(engine, log, user_id, role, actor="demo")
    finally:
        log.close()


@dataclass(frozen=True, slots=True)
class DemoWitness:
    """A witness of our own beside the demo (docs/witnesses.md): the demo log is cosigned."""

    cosigner: Cosigner
    port: int
    state: Path


def demo_witnesses(directory: Path) -> list[DemoWitness]:
    """Two witnesses with their own keys; their `[[audit.witnesses]]` go into the config."""
    found = []
    for n in (1, 2):
        key = directory / f"witness-{n}.key"
        key.write_text(generate_witness_key(f"demo.witness.local/w{n}") + "\n", encoding="utf-8")
        key.chmod(0o600)
        found.append(
            DemoWitness(Cosigner.load(key), free_port(), directory / f"witness-{n}" / "state.db")
        )
    return found


def witness_tables(witnesses: list[DemoWitness]) -> str:
    tables = [
        f"\n[[audit.witnesses]]\nurl = {_toml(f'http://127.0.0.1:{w.port}')}\n"
        f"vkey = {_toml(w.cosigner.verifier.text)}\n"
        for w in witnesses
    ]
    return "".join(tables)


def _toml(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def instructions(keys: dict[str, str], port: int, config: Path, verify: str | None = None) -> str:
    base = f"http://127.0.0.1:{port}"
    lines = [
        "",
        "Clearance demo — every reply comes from a DEMO upstream (deterministic text).",
        f"Gateway: {base}   audit checkpoint: {base}/audit/checkpoint   metrics: {base}/metrics",
        f"Portal:  {base}/portal  (sign-in links are printed here, in this console)",
        "",
    ]
    for p in PERSONAS:
        lines += [f"  {p.who:<52} {p.email:<18} {keys[p.email]}"]
    key = keys[PERSONAS[1].email]
    lines += [
        "",
        "Try (the Swedish national asks for mythos-5 and is served a fallback):",
        f"  curl -si {base}/v1/chat/completions -H 'Authorization: Bearer {key}' \\",
        "    -H 'content-type: application/json' \\",
        """    -d '{"model": "mythos-5", "messages": [{"role": "user", "content": "Hello"}]}'""",
        "",
        "  python -c \"import openai; c = openai.OpenAI(base_url='" + base + "/v1', "
        f"api_key='{key}'); print(c.chat.completions.create(model='mythos-5', "
        "messages=[{'role': 'user', 'content': 'Hello'}]).choices[0].message.content)\"",
        "",
        "  python -c \"import anthropic; c = anthropic.Anthropic(base_url='" + base + "', "
        f"api_key='{keys[PERSONAS[0].email]}'); print(c.messages.create(model='mythos-5', "
        "max_tokens=100, messages=[{'role': 'user', 'content': 'Hello'}]).content[0].text)\"",
        "",
        "Kill switch, from another terminal:",
        f"  .venv/bin/clearance models suspend fable-5 --reason 'demo incident' --config {config}",
        "",
        f"Review console: sign in to the portal as {PERSONAS[0].email} (a reviewer) and open"
        f" {base}/portal/review",
        f"Operator console: the same account (an admin) at {base}/console",
        f"Organisation page (KYB, owners): sign in as {ERIK} (Acme Corp's admin) at"
        f" {base}/portal/org",
        "Operator API: make a scoped token, then call it:",
        "  .venv/bin/clearance admin tokens create demo-ops --scope catalog:read "
        f"--scope catalog:write --config {config}",
        f"  curl -s {base}/admin/api/models -H 'Authorization: Bearer <the token>'",
        "",
    ]
    if verify:
        lines += [
            "Audit: the log is cosigned by two witnesses of its own (docs/witnesses.md). Verify it"
            " as an auditor would:",
            f"  {verify}",
            "",
        ]
    return "\n".join(lines)


def run_demo(directory: Path, port: int) -> None:
    if directory.exists():
        if not (directory / "clearance.toml").exists():
            raise Conflict(f"{directory} exists and is not a Clearance demo directory")
        shutil.rmtree(directory)
    write_instance(directory, origin="demo.clearance.local/audit")
    config = directory / "clearance.toml"
    # The port the demo serves on is the one its sign-in links and 451 `Link`s name.
    text = config.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^port = 8080\b", f"port = {port}", text)
    text = text.replace("http://127.0.0.1:8080/portal", f"http://127.0.0.1:{port}/portal")
    witnesses = demo_witnesses(directory)
    text = text.replace("[audit]\n", "[audit]\nwitness_quorum = 2\n", 1) + witness_tables(witnesses)
    config.write_text(text, encoding="utf-8")
    settings = load_settings(config)
    engine = connect(settings.database_url)
    migrate(engine)
    upstream_port = free_port()
    keys = seed(engine, settings, f"http://127.0.0.1:{upstream_port}")
    make_staff(engine, settings, PERSONAS[0].email, ERIK)
    engine.dispose()
    log_key = load_signer(settings.audit.signing_key_file).verifier
    verify = (
        f".venv/bin/clearance-verify log http://127.0.0.1:{port}/audit --key {log_key.text} "
        + " ".join(f"--witness {w.cosigner.verifier.text}" for w in witnesses)
        + " --quorum 2"
    )
    print(instructions(keys, port, config, verify), flush=True)
    # Portal verifications are queued: a worker runs them beside the demo (clearance/jobs).
    worker = start_local(config.resolve())
    try:
        asyncio.run(_serve(settings, port, upstream_port, witnesses))
    finally:
        stop_local(worker, settings.jobs.time_limit_seconds + 5.0)


async def _serve(
    settings: Settings, port: int, upstream_port: int, witnesses: Sequence[DemoWitness] = ()
) -> None:
    upstream = uvicorn.Server(
        uvicorn.Config(
            demo_upstream_app(),
            **server_options(host="127.0.0.1", port=upstream_port, lifespan="off"),
        )
    )
    gateway = uvicorn.Server(
        uvicorn.Config(create_app(settings), **server_options(host="127.0.0.1", port=port))
    )
    log_key = load_signer(settings.audit.signing_key_file).verifier
    states = [WitnessState(w.state) for w in witnesses]
    servers = [
        uvicorn.Server(
            uvicorn.Config(
                witness_app(Witness(w.cosigner, {settings.audit.origin: [log_key]}, state)),
                **server_options(host="127.0.0.1", port=w.port, lifespan="off"),
            )
        )
        for w, state in zip(witnesses, states, strict=True)
    ]
    try:
        await asyncio.gather(upstream.serve(), gateway.serve(), *(s.serve() for s in servers))
    finally:
        for state in states:
            state.close()
