"""An auditor's bundle: everything decided about one person, organisation or model in a period,
provable offline against one signed checkpoint (`clearance audit export`).

    manifest.json         filter, period, counts, each entry, SHA-256 of every other file
    checkpoint.txt        the latest served checkpoint, the whole signed note as served (the
                          log's signature and any witness cosignature/v1 lines)
    keys.json             the log's verifier key; witness keys and quorum where configured
    entries/<index>.json  the exact stored bytes of each matching entry (what the tree hashed)
    proofs/<index>.json   its RFC 9162 §2.1.3.1 inclusion proof against the checkpoint
    report.pdf, or entries.jsonl + summary.txt, or entries.csv + summary.csv
    cip.json              a person's CIP record, where [cip] keeps one (identity/cip.py)

The entries hold pseudonyms only, as in the log. The person's name and email appear in the
report and manifest only while their data has not been erased on request (audit/report.py).
`clearance-verify bundle DIR` (verifier/) checks a bundle without this package.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.audit import merkle, report
from clearance.audit.archive import open_archive
from clearance.audit.checkpoint import Checkpoint, open_checkpoint
from clearance.audit.compat import typed_view
from clearance.audit.entries import rfc3339
from clearance.audit.keys import load_signer
from clearance.audit.query import CHUNK, EntryFilter
from clearance.audit.reader import LogReader, StoredTiles
from clearance.config import Settings
from clearance.errors import ClearanceError, InvalidInput, NotFound, VerificationError
from clearance.policy.engine import PolicyEngine
from clearance.principals.service import get_org, get_user, get_user_by_subject
from clearance.store import reading
from clearance.store.tables import users

FORMAT = "clearance-audit-bundle/1"
Format = Literal["jsonl", "csv", "pdf"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "pdf")
# An erasure on request (identity/service.py erase_evidence); a retention purge is not one.
ERASURE_ACTION = "identity.evidence.erase"


@dataclass(frozen=True, slots=True)
class Selection:
    """Exactly one of email, subject, org, model; times are RFC 3339 UTC (since inclusive)."""

    email: str | None = None
    subject: str | None = None
    org: str | None = None
    model: str | None = None
    since: str | None = None
    until: str | None = None

    def __post_init__(self) -> None:
        chosen = [v for v in (self.email, self.subject, self.org, self.model) if v is not None]
        if len(chosen) != 1:
            raise InvalidInput("choose exactly one of --email, --subject, --org, --model")
        if self.since and self.until and self.until <= self.since:
            raise InvalidInput("--until must be later than --since")


def parse_moment(text: str, option: str) -> str:
    """An ISO 8601 date or time (UTC unless it says otherwise) as entries write time."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput(f"{option}: {text!r} is not an ISO 8601 date or time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return rfc3339(moment)


@dataclass(frozen=True, slots=True)
class Person:
    """Who the selection names; `email` and `name` are None once their data was erased."""

    subject: str
    email: str | None
    name: str | None
    erased_at: str | None  # when the erasure on request was recorded, if it was


@dataclass(frozen=True, slots=True)
class Target:
    """What the selection resolved to in the operator's database."""

    description: str  # for the report; personal data only while not erased
    subjects: frozenset[str] = frozenset()
    org: str | None = None
    person: Person | None = None
    members: int = 0


@dataclass(slots=True)
class Collected:
    target: Target
    checkpoint: Checkpoint
    note: str
    entries: list[tuple[int, bytes, dict[str, Any]]] = field(default_factory=list)
    later: int = 0  # matching entries after the checkpoint, not in this bundle


@dataclass(frozen=True, slots=True)
class Exported:
    directory: Path
    entries: int
    later: int
    checkpoint: Checkpoint
    log_key: str


def _resolve(engine: Engine, selection: Selection) -> Target:
    with reading(engine) as conn:
        if selection.email is not None:
            user = get_user(conn, selection.email)  # NotFound: "unknown user '...'"
            subject = user.subject_id
            return Target(
                "", frozenset({subject}), person=Person(subject, user.email, user.name, None)
            )
        if selection.subject is not None:
            try:
                user = get_user_by_subject(conn, selection.subject)
            except NotFound as exc:
                raise NotFound(f"unknown subject {selection.subject!r}") from exc
            subject = user.subject_id
            return Target(
                "", frozenset({subject}), person=Person(subject, user.email, user.name, None)
            )
        if selection.org is not None:
            org = get_org(conn, selection.org)  # NotFound: "unknown organisation '...'"
            members = frozenset(
                str(s)
                for s in conn.execute(
                    sa.select(users.c.subject_id).where(users.c.org_id == org.id)
                ).scalars()
            )
            description = f"organisation {org.name} ({len(members)} members, by pseudonym)"
            return Target(description, members, org=org.name, members=len(members))
    return Target(f"model {selection.model}")


def _matches(target: Target, where: EntryFilter, record: dict[str, Any]) -> bool:
    if not where.matches(record):
        return False
    if target.person is None and target.org is None:
        return True  # a model: the filter alone decides
    if record.get("subject") in target.subjects:
        return True
    # Operator actions on the organisation itself (licences, screening) name it as target.
    return (
        target.org is not None
        and record.get("type") == "admin_action"
        and record.get("target") == target.org
    )


def _scan(reader: LogReader) -> Iterator[tuple[int, bytes]]:
    head, _ = reader.sizes()
    for start in range(0, head, CHUNK):
        for offset, raw in enumerate(reader.entries(start, min(head, start + CHUNK))):
            yield start + offset, raw


def collect(engine: Engine, settings: Settings, selection: Selection) -> Collected:
    """The matching entries up to the latest served checkpoint, and what the report may say."""
    target = _resolve(engine, selection)
    archive = open_archive(settings.audit)
    reader = LogReader(engine, archive)
    verifier = load_signer(settings.audit.signing_key_file).verifier
    note = reader.checkpoint()  # verbatim: witness cosignatures stay as served
    checkpoint = open_checkpoint(note, verifier, settings.audit.origin)
    where = EntryFilter(model=selection.model, since=selection.since, until=selection.until)
    found = Collected(target, checkpoint, note)
    erased_at: str | None = None
    for index, raw in _scan(reader):
        record = orjson.loads(raw)
        if not isinstance(record, dict):
            continue
        person = target.person
        if (
            person is not None
            and record.get("type") == "admin_action"
            and record.get("action") == ERASURE_ACTION
            and record.get("subject") == person.subject
        ):
            erased_at = erased_at or str(record.get("time"))
        if _matches(target, where, record):
            if index < checkpoint.size:
                found.entries.append((index, raw, typed_view(record)))
            else:
                found.later += 1
    if target.person is not None:
        found.target = _describe_person(target, erased_at)
    return found


def _describe_person(target: Target, erased_at: str | None) -> Target:
    person = target.person
    assert person is not None
    if erased_at is not None:
        # Erased on request: from here on the bundle names the person by pseudonym only.
        shown = Person(person.subject, None, None, erased_at)
        text = f"subject {person.subject} (personal data erased on request, {erased_at[:10]})"
    else:
        shown = person
        name = f"{person.name} " if person.name else ""
        text = f"{name}<{person.email}>, subject {person.subject}"
    return Target(text, target.subjects, person=shown)


def _proofs(engine: Engine, settings: Settings, collected: Collected) -> dict[int, list[bytes]]:
    """RFC 9162 §2.1.3.1 proofs from the stored tiles, each checked (§2.1.3.2) before writing:
    a bundle that would not verify is never handed to an auditor."""
    size, root = collected.checkpoint.size, collected.checkpoint.root
    proofs: dict[int, list[bytes]] = {}
    with reading(engine) as conn:
        read = StoredTiles(conn, open_archive(settings.audit)).node_reader()
        for index, raw, _ in collected.entries:
            proof = merkle.inclusion_proof(index, size, read)
            try:
                merkle.verify_inclusion(index, size, merkle.leaf_hash(raw), proof, root)
            except VerificationError as exc:
                raise VerificationError(
                    f"audit entry {index} does not verify: {exc.detail}"
                ) from exc
            proofs[index] = proof
    return proofs


def witness_keys(settings: Settings) -> tuple[list[str], int]:
    """Witness verifier keys (`[[audit.witnesses]]` `vkey`) and `[audit] witness_quorum`, where
    the configuration has them; the quorum is at most the witnesses configured."""
    keys = []
    for witness in getattr(settings.audit, "witnesses", None) or ():
        if isinstance(witness, Mapping):
            vkey = witness.get("vkey")
        else:
            vkey = getattr(witness, "vkey", None)
        if isinstance(vkey, str):
            keys.append(vkey)
    quorum = getattr(settings.audit, "witness_quorum", 0)
    return keys, min(quorum if isinstance(quorum, int) else 0, len(keys))


def export_bundle(
    engine: Engine,
    settings: Settings,
    selection: Selection,
    fmt: Format,
    out: Path,
    *,
    now: datetime | None = None,
    cip_record: Mapping[str, Any] | None = None,
) -> Exported:
    """Write the bundle into `out` (created; it must not hold anything yet). A person's
    Customer Identification Programme record, read by the caller (its view is itself an entry),
    goes in as `cip.json`, listed in the manifest like every file."""
    if fmt not in FORMATS:
        raise InvalidInput(f"--format must be one of {', '.join(FORMATS)}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInput(f"{out} exists and is not an empty directory")
    moment = datetime.now(UTC) if now is None else now
    collected = collect(engine, settings, selection)
    proofs = _proofs(engine, settings, collected)
    log_key = load_signer(settings.audit.signing_key_file).verifier.text
    witnesses, quorum = witness_keys(settings)
    checkpoint = collected.checkpoint
    files: dict[str, bytes] = {
        "checkpoint.txt": collected.note.encode(),
        "keys.json": _json({"log": log_key, "witnesses": witnesses, "quorum": quorum}),
    }
    for index, raw, _ in collected.entries:
        files[f"entries/{index}.json"] = raw
        hashes = [base64.b64encode(h).decode() for h in proofs[index]]
        files[f"proofs/{index}.json"] = _json(
            {"index": index, "size": checkpoint.size, "hashes": hashes}
        )
    facts = _facts(settings, selection, collected, log_key, witnesses, quorum, moment)
    summary = report.summarise(
        f"Audit records: {collected.target.description}",
        facts,
        [record for _, _, record in collected.entries],
        _legal_bases(settings),
    )
    files.update(report.render(fmt, summary, collected.entries, moment))
    if cip_record is not None:
        files["cip.json"] = _json(cip_record)
    manifest = {
        "bundle": FORMAT,
        "created": rfc3339(moment),
        "log": {
            "origin": checkpoint.origin,
            "size": checkpoint.size,
            "root": base64.b64encode(checkpoint.root).decode(),
        },
        "filter": _filter(selection, collected.target),
        "time_range": {"since": selection.since, "until": selection.until},
        "counts": {
            "entries": len(collected.entries),
            "after_checkpoint": collected.later,
            "by_type": summary.by_type,
        },
        "entries": [
            {"index": i, "leaf_hash": merkle.leaf_hash(raw).hex()}
            for i, raw, _ in collected.entries
        ],
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    files["manifest.json"] = _json(manifest)
    for name, data in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return Exported(out, len(collected.entries), collected.later, checkpoint, log_key)


def _legal_bases(settings: Settings) -> dict[str, str]:
    """Each rule's @legal_basis in the configured policy (the report cites it by rule)."""
    try:
        engine = PolicyEngine.from_files(settings.policy.files)
    except ClearanceError:
        return {}  # the report then says the rule is not in the current policy
    return {rule: reason.legal_basis for rule, reason in engine.rules.items()}


def _facts(
    settings: Settings,
    selection: Selection,
    collected: Collected,
    log_key: str,
    witnesses: list[str],
    quorum: int,
    moment: datetime,
) -> list[tuple[str, str]]:
    checkpoint, target = collected.checkpoint, collected.target
    count = len(collected.entries)
    facts = [
        ("Selection", target.description),
        (
            "Period",
            f"from {selection.since or 'the start of the log'} "
            f"until {selection.until or 'the checkpoint'} (UTC)",
        ),
        (
            "Entries",
            str(count)
            if count
            else "None: no entry matches this selection in the log up to the checkpoint.",
        ),
    ]
    if collected.later:
        facts.append(
            (
                "Not yet covered",
                f"{collected.later} matching entries are newer than the checkpoint; export "
                "again once a later checkpoint covers them",
            )
        )
    person = target.person
    if person is not None and person.erased_at is not None:
        privacy = f"erased on request ({person.erased_at[:10]}): named by pseudonym only"
    elif person is not None:
        privacy = "name and email from the operator's records; the entries hold the pseudonym"
    else:
        privacy = "the entries name people by pseudonym only"
    signer = log_key.split("+", 1)[0]
    cosignatures = sum(
        1
        for line in collected.note.splitlines()
        if line.startswith("\u2014 ") and not line.startswith(f"\u2014 {signer} ")
    )
    facts += [
        ("Personal data", privacy),
        ("Log", checkpoint.origin),
        (
            "Checkpoint",
            f"size {checkpoint.size}, root {base64.b64encode(checkpoint.root).decode()}",
        ),
        ("Log key", log_key),
        (
            "Witnesses",
            f"{len(witnesses)} configured, quorum {quorum}; "
            f"{cosignatures} cosignatures on the checkpoint",
        ),
        (
            "Verification method",
            "each entry's RFC 9162 inclusion proof (section 2.1.3) against one C2SP "
            "tlog-checkpoint signed with the log's Ed25519 key (C2SP signed-note), and "
            "witness cosignatures (C2SP tlog-cosignature); check it with "
            "`clearance-verify bundle <this directory> --key <log key>`",
        ),
        (
            "Verified",
            f"{rfc3339(moment)[:19]}Z: every inclusion proof checked against the checkpoint "
            "root before this bundle was written",
        ),
        (
            "Retention",
            f"export records are kept at least {settings.retention.export_records_years} "
            "years (15 CFR 762.6); none is deleted",
        ),
    ]
    return facts


def _filter(selection: Selection, target: Target) -> dict[str, object]:
    person = target.person
    if person is not None:
        # Selected by email or subject, the manifest names the pseudonym, and the email only
        # while the person's data has not been erased.
        shown: dict[str, object] = {"subject": person.subject}
        if person.email is not None:
            shown["email"] = person.email
        return shown
    if target.org is not None:
        return {"org": target.org, "members": target.members}
    return {"model": selection.model}


def _json(value: object) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()
