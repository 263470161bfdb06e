"""`clearance identity verify|erase|purge`, `identity review ...` and `identity cip show|set`.

The commands join the `identity` group of `cli.principals` (beside `attest`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from clearance.audit.service import AuditLog
from clearance.cli.context import ConfigOption, JsonOption, Runtime, open_runtime, operator
from clearance.cli.principals import identity_app
from clearance.errors import ConfigError, ImageTooLarge, InvalidInput, UnsupportedImage
from clearance.identity import cip, review, service
from clearance.identity.document import LoadedImage, load_image
from clearance.identity.models import Case, Outcome, VerificationMethod, verdict_json
from clearance.identity.vault import EvidenceVault
from clearance.jobs import service as jobs
from clearance.jobs.models import JobKind, JobState
from clearance.jobs.uploads import Uploads, stage
from clearance.principals import service as principals
from clearance.store import reading

review_app = typer.Typer(help="The identity review queue.", no_args_is_help=True)
cip_app = typer.Typer(
    help="The Customer Identification Programme record ([cip] require).", no_args_is_help=True
)
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def register(_app: typer.Typer) -> None:
    """The commands live on `identity_app`, which `cli.principals` registers."""
    identity_app.add_typer(review_app, name="review")
    identity_app.add_typer(cip_app, name="cip")


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read the {what} {path}: {exc.strerror}") from None


def _load(path: Path, what: str, data: bytes) -> LoadedImage:
    """A clean refusal names the file: "the selfie x.pdf: the file is not a JPEG, PNG ..."."""
    try:
        return load_image(data)
    except (UnsupportedImage, ImageTooLarge) as exc:
        raise type(exc)(f"the {what} {path.name}: {exc.detail}") from None


def _frames(directory: Path | None) -> list[Path]:
    """Frames in name order (the capture order); the challenge needs them in sequence."""
    if directory is None:
        return []
    if not directory.is_dir():
        raise InvalidInput(f"--liveness {directory} is not a directory")
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise InvalidInput(f"--liveness {directory} holds no .jpg, .png or .webp frames")
    return files


@contextmanager
def _tools(rt: Runtime) -> Iterator[tuple[EvidenceVault, AuditLog]]:
    if rt.settings.identity.face_match_threshold > rt.settings.identity.face_review_threshold:
        raise ConfigError("[identity] face_match_threshold must not exceed face_review_threshold")
    vault = EvidenceVault.open(rt.settings.identity)
    log = AuditLog(rt.engine, rt.settings.audit)
    try:
        yield vault, log
    finally:
        log.close()


@identity_app.command("verify")
def verify(
    email: str,
    document: Annotated[Path, typer.Option("--document", metavar="FILE")],
    selfie: Annotated[Path, typer.Option("--selfie", metavar="FILE")],
    liveness: Annotated[Path | None, typer.Option("--liveness", metavar="DIR")] = None,
    method: Annotated[VerificationMethod, typer.Option("--method")] = VerificationMethod.REMOTE,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="Run the queued job here and print the case (--no-wait: leave it to a worker "
            "and print the job's id).",
        ),
    ] = True,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Verify a person from a document photo and a selfie (and liveness frames, if remote)."""
    files = [_read(document, "document"), _read(selfie, "selfie")]
    frames = [_read(path, "liveness frame") for path in _frames(liveness)]
    # Decoded here too, so that a bad file is refused at once, naming it; the job decodes again.
    _load(document, "document", files[0])
    _load(selfie, "selfie", files[1])
    for path, data in zip(_frames(liveness), frames, strict=True):
        _load(path, "liveness frame", data)
    uploads = Uploads(files[0], files[1], tuple(frames))
    with open_runtime(config) as rt, _tools(rt) as (vault, log):
        with rt.engine.connect() as conn:
            user = principals.get_user(conn, email)
        with rt.engine.begin() as conn:
            # An operator's own verification skips the portal's queue bound ([jobs] max_pending).
            payload = stage(vault, uploads, method)
            job_id = jobs.enqueue(
                conn,
                JobKind.VERIFY_DOCUMENT,
                payload,
                user_id=user.id,
                max_attempts=rt.settings.jobs.max_attempts,
            )
        if not wait:
            typer.echo(json.dumps({"job": job_id}) if as_json else f"queued as job {job_id}")
            return
        case = _run_here(rt, log, job_id)
    if as_json:
        typer.echo(json.dumps(verdict_json(case)))
        return
    _print_case(case)


def _run_here(rt: Runtime, log: AuditLog, job_id: int) -> Case:
    """Run job `job_id` in this process (the OCR and face models load now, ~5 s), unless a
    worker has claimed it first: then wait for that worker to finish it."""
    from clearance.jobs.runner import run_job
    from clearance.jobs.verification import Verifications

    handler = Verifications(rt.settings, rt.engine, log)
    # No worker renews this process's claim: it covers the whole time limit, and a lease more.
    lease = rt.settings.jobs.time_limit_seconds + rt.settings.jobs.lease_seconds
    deadline = time.monotonic() + lease * rt.settings.jobs.max_attempts
    while True:
        job = jobs.claim(rt.engine, lease_seconds=lease, runner=jobs.runner_name(), job_id=job_id)
        if job is not None:
            run_job(handler, rt.engine, job)
        with reading(rt.engine) as conn:
            job = jobs.get(conn, job_id)
            if job.state is JobState.DONE and job.case is not None:
                return service.get_case(conn, job.case)
        if job.state is JobState.REJECTED:
            raise InvalidInput(job.reason or "the verification was rejected")
        if time.monotonic() > deadline:
            raise InvalidInput(f"job {job_id} has not finished; see it again later")
        time.sleep(0.5)  # a retry's back-off, or another worker's attempt


def _print_case(case: Case) -> None:
    facts = f"{', '.join(case.nationalities) or '-'}; US person: {case.us_person.value}"
    typer.echo(f"case {case.id}: {case.status.value} ({facts})")
    for reason in case.reasons:
        typer.echo(f"  reason: {reason}")


@identity_app.command("erase")
def erase(email: str, config: ConfigOption = None) -> None:
    """Erase every image of a person on request; decisions and facts stay. Refused while a
    legal hold covers the person, their org or one of their cases (`clearance audit hold`)."""
    with open_runtime(config) as rt, _tools(rt) as (vault, log):
        with rt.engine.connect() as conn:
            user = principals.get_user(conn, email)
        count = service.erase_evidence(rt.engine, vault, log, user.id, actor=operator())
        years = rt.settings.retention.export_records_years
        cip_kept = bool(rt.settings.cip.require)
    typer.echo(f"erased {count} evidence files of {email}")
    # 15 CFR 762.6: the decisions are export records; an erasure request does not reach them.
    typer.echo(f"their identity decisions and audit entries are kept (at least {years} years)")
    if cip_kept:
        typer.echo("their customer identification record is kept too ([cip]; docs/cip.md)")


@cip_app.command("show")
def cip_show(
    email: str,
    reason: Annotated[str, typer.Option("--reason", help="Why you open it (recorded).")],
    since: Annotated[
        str | None, typer.Option("--since", metavar="YYYY-MM-DD", help="Addresses from this day.")
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """A person's CIP record, decrypted; the view is an audit entry first."""
    try:
        day = date.fromisoformat(since) if since else None
    except ValueError:
        raise InvalidInput(f"--since: not a date (YYYY-MM-DD): {since}") from None
    with open_runtime(config) as rt, _tools(rt) as (vault, log):
        with rt.engine.connect() as conn:
            user = principals.get_user(conn, email)
        record = cip.view(
            rt.engine,
            cip.CipKeys.of(vault),
            log,
            rt.settings.cip,
            user.id,
            actor=operator(),
            purpose=reason,
            since=day,
        )
    body = record.as_json()
    if as_json:
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    for field in record.required:
        if field != "ip":
            typer.echo(f"{field}: {json.dumps(body['fields'].get(field), ensure_ascii=False)}")
    for a in body["addresses"]:
        typer.echo(
            f"{a['day']}  {a['address']}  {a['first_seen']} .. {a['last_seen']}  {a['requests']}"
        )
    if record.missing:
        typer.echo("missing: " + ", ".join(record.missing))


@cip_app.command("set")
def cip_set(
    email: str,
    address: Annotated[str | None, typer.Option("--address")] = None,
    phone: Annotated[
        str | None, typer.Option("--phone", help="E.164: +, country code, number.")
    ] = None,
    payment_means: Annotated[
        str | None, typer.Option("--payment-means", help=" | ".join(cip.PAYMENT_MEANS))
    ] = None,
    payment_source: Annotated[
        str | None, typer.Option("--payment-source", help="The bank or card issuer.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Record fields a person supplies (as a billing system knows them); names, not values, are
    logged."""
    changes: dict[str, object] = {}
    if address is not None:
        changes["address"] = address
    if phone is not None:
        changes["phone"] = phone
    if payment_means is not None or payment_source is not None:
        changes["payment"] = {"means": payment_means, "source": payment_source}
    with open_runtime(config) as rt, _tools(rt) as (vault, log):
        with rt.engine.connect() as conn:
            user = principals.get_user(conn, email)
        index = cip.supply(
            rt.engine,
            cip.CipKeys.of(vault),
            log,
            rt.settings.cip,
            user.id,
            changes,
            actor=operator(),
        )
    typer.echo(f"recorded {', '.join(sorted(changes))} for {email} (audit entry {index})")


@identity_app.command("purge")
def purge(config: ConfigOption = None) -> None:
    """Erase images older than [identity] retention_days (run daily), except under legal hold."""
    with open_runtime(config) as rt, _tools(rt) as (vault, log):
        days = rt.settings.identity.retention_days
        count = service.purge_expired(rt.engine, vault, log, retention_days=days, actor=operator())
        held = service.held_past_retention(rt.engine, retention_days=days)
    typer.echo(f"erased {count} evidence files older than {days} days")
    if held:
        typer.echo(f"kept {held} older files under legal hold (clearance audit hold list)")


@review_app.command("list")
def review_list(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Cases awaiting review, oldest first."""
    with open_runtime(config) as rt, rt.engine.connect() as conn:
        cases = review.pending(conn)
    if as_json:
        rows = [
            {
                "case": c.id,
                "subject": c.subject,
                "method": c.method,
                "created": c.created_at.isoformat(),
                "reasons": list(c.reasons),
            }
            for c in cases
        ]
        typer.echo(json.dumps(rows))
        return
    for c in cases:
        typer.echo(f"{c.id}\t{c.subject}\t{c.created_at:%Y-%m-%d %H:%M}\t{','.join(c.reasons)}")
    if not cases:
        typer.echo("no cases awaiting review")


@review_app.command("show")
def review_show(
    case_id: Annotated[int, typer.Argument(metavar="CASE")],
    export: Annotated[Path | None, typer.Option("--export", metavar="DIR")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Open a case: decrypts its evidence (an audited view); --export writes the images."""
    with open_runtime(config) as rt, _tools(rt) as (vault, log):
        opened = review.open_case(rt.engine, vault, log, case_id, actor=operator())
    files = []
    for position, (evidence, data) in enumerate(opened.images):
        name = f"{opened.case.id}-{position:02d}-{evidence.kind.value}.jpg"
        if export is not None and data is not None:
            export.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(export / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        files.append({"kind": evidence.kind.value, "erased": data is None, "file": name})
    out = {**verdict_json(opened.case), "case": opened.case.id, "evidence": files}
    if as_json:
        typer.echo(json.dumps(out))
        return
    _print_case(opened.case)
    for item in files:
        typer.echo(f"  {item['kind']}: {'erased' if item['erased'] else item['file']}")


@review_app.command("decide")
def review_decide(
    case_id: Annotated[int, typer.Argument(metavar="CASE")],
    outcome: Annotated[Outcome, typer.Option("--outcome", help="verified or rejected")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the case).")],
    config: ConfigOption = None,
) -> None:
    """Close a review case; verified facts reach the policy at once."""
    with open_runtime(config) as rt, _tools(rt) as (_vault, log):
        case = review.decide_case(
            rt.engine,
            log,
            case_id,
            actor=operator(),
            outcome=outcome,
            note=reason,
            max_age_days=rt.settings.policy.verification_max_age_days,
        )
    _print_case(case)
