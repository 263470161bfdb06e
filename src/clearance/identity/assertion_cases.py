"""Decide on a checked assertion (an OIDC4IA ID token or a vendor webhook) and record it.

The assertion has already been verified (`oidc.verify_id_token`, `webhooks.parse_event`); here
it meets the same rules as a document: a nationality must be established, an evidence document
must not be expired nor back another account, and the decision is stored, audited and applied
exactly as `identity.service.verify_document` does. No images exist: the audit entry names the
digest of the token or webhook body that carried the assertion.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clearance.audit.sink import AuditSink
from clearance.errors import Conflict, NotFound
from clearance.identity.assertions.oidc import AssertedIdentity
from clearance.identity.assertions.webhooks import WebhookEvent
from clearance.identity.decision import outcome
from clearance.identity.models import Case, Outcome, Reason, Verdict
from clearance.identity.service import (
    bind_document,
    bound_elsewhere,
    document_digest,
    insert_case,
    record_decision,
)
from clearance.identity.tables import identity_webhook_events
from clearance.identity.vault import EvidenceVault
from clearance.principals.models import Method, UsPerson
from clearance.store.tables import users


def _digests(vault: EvidenceVault, asserted: AssertedIdentity) -> list[str]:
    return [
        document_digest(vault, d.country, d.number)
        for d in asserted.documents
        if d.country and d.number
    ]


def _verdict(asserted: AssertedIdentity | None, reasons: list[Reason], today: date) -> Verdict:
    if asserted is not None:
        if not asserted.nationalities:
            reasons.append(Reason.ASSERTION_NO_NATIONALITY)
        if asserted.expires is not None and asserted.expires < today:
            reasons.append(Reason.DOCUMENT_EXPIRED)
    unique = tuple(dict.fromkeys(reasons))
    return Verdict(
        status=outcome(unique),
        reasons=unique,
        nationalities=asserted.nationalities if asserted else (),
        us_person=asserted.us_person if asserted else UsPerson.NONE,
        document=None,
        face=None,
        expires=asserted.expires if asserted else None,
    )


def accept_assertion(
    engine: Engine,
    vault: EvidenceVault,
    audit: AuditSink,
    user_id: int,
    asserted: AssertedIdentity | None,
    *,
    carrier: bytes,
    reasons: tuple[Reason, ...] = (),
    max_age_days: int,
    today: date | None = None,
    webhook: WebhookEvent | None = None,
) -> Case:
    """`carrier`: the exact token or body bytes (only their digest is kept)."""
    today = today or datetime.now(UTC).date()
    found = list(reasons)
    with engine.begin() as conn:
        if webhook is not None:
            _accept_once(conn, webhook)
        digests = _digests(vault, asserted) if asserted else []
        if any(bound_elsewhere(conn, d, user_id) for d in digests):
            found.append(Reason.DOCUMENT_REUSED)
        verdict = _verdict(asserted, found, today)
        case_id = insert_case(
            conn,
            user_id=user_id,
            verdict=verdict,
            method="assertion",
            source="assertion",
            digest=digests[0] if digests else None,
            evidence=hashlib.sha256(carrier).hexdigest(),
        )
        if verdict.status is not Outcome.REJECTED:
            for digest in digests:
                bind_document(conn, digest, user_id, case_id)
    return record_decision(
        engine,
        audit,
        case_id,
        audit_method="assertion",
        facts_method=Method.ASSERTION,
        assurance=asserted.trust_framework if asserted else None,
        max_age_days=max_age_days,
    )


def _accept_once(conn: sa.Connection, event: WebhookEvent) -> None:
    """A webhook event is acted on once: a second delivery of the same id is a replay."""
    seen = conn.execute(
        sa.select(identity_webhook_events.c.event_id).where(
            identity_webhook_events.c.vendor == event.vendor,
            identity_webhook_events.c.event_id == event.id,
        )
    ).first()
    if seen is not None:
        raise Conflict("this webhook event was already processed")
    conn.execute(
        sa.insert(identity_webhook_events).values(
            vendor=event.vendor, event_id=event.id, received_at=datetime.now(UTC)
        )
    )


def accept_webhook(
    engine: Engine,
    vault: EvidenceVault,
    audit: AuditSink,
    event: WebhookEvent,
    *,
    body: bytes,
    max_age_days: int,
    today: date | None = None,
) -> Case:
    with engine.connect() as conn:
        user_id = conn.execute(
            sa.select(users.c.id).where(users.c.subject_id == event.reference)
        ).scalar_one_or_none()
    if user_id is None:
        raise NotFound("the webhook names no known person")
    reasons = {
        "declined": (Reason.VENDOR_DECLINED,),
        "review": (Reason.VENDOR_REVIEW,),
    }.get(event.status, ())
    return accept_assertion(
        engine,
        vault,
        audit,
        int(user_id),
        event.identity,
        carrier=body,
        reasons=reasons,
        max_age_days=max_age_days,
        today=today,
        webhook=event,
    )
