"""A case awaiting review, stored through the real identity service into a running instance.

The examination is given as already measured (the seam `identity.models.Examination`, as in
tests/identity/test_service.py): a valid US passport MRZ for Nina Novak, the demo's unverified
persona, with a face distance in the review band, so the case waits for a reviewer with
`face_uncertain`. The evidence images are small real JPEGs, each a different colour, so a test
can tell which one the portal served.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

import sqlalchemy as sa
from PIL import Image
from sqlalchemy.engine import Engine

from clearance.audit.service import AuditLog
from clearance.audit.tables import audit_entries
from clearance.config import CipSettings, Settings
from clearance.identity import service
from clearance.identity.decision import read_mrz_text
from clearance.identity.models import (
    Examination,
    FaceCheck,
    LivenessCheck,
    Outcome,
    VerificationMethod,
)
from clearance.identity.mrz import DocumentData, DocumentFormat, Sex, compose
from clearance.identity.vault import EvidenceVault
from clearance.portal import operators
from clearance.principals.service import get_user
from clearance.store import connect

NINA = "nina@demo.test"  # the case's person: unverified, with a key that cannot reach mythos-5
REVIEWER = "sven@demo.test"
OUTSIDER = "luis@demo.test"  # signed in, no operator role


def jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 64), colour).save(out, format="JPEG", quality=90)
    return out.getvalue()


def passport() -> tuple[str, ...]:
    today = datetime.now(UTC).date()
    return compose(
        DocumentData(
            format=DocumentFormat.TD3,
            document_code="P",
            issuing_state="USA",
            nationality="USA",
            primary_identifier="NOVAK",
            secondary_identifier="NINA",
            document_number="R12345678",
            birth_date=date(1990, 3, 14),
            sex=Sex.FEMALE,
            expiry_date=date(today.year + 5, 1, 31),
        )
    )


@dataclass(frozen=True)
class Stored:
    case_id: int
    subject: str  # Nina's pseudonym
    images: tuple[bytes, ...]  # document, selfie, frames: the vault's plaintexts, in order


class Instance:
    """Direct access to a running instance's database, vault and audit log (closed by close())."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: Engine = connect(settings.database_url)
        self.audit = AuditLog(self.engine, settings.audit)

    def close(self) -> None:
        self.audit.close()
        self.engine.dispose()

    def review_case(self, email: str = NINA, cip_settings: CipSettings | None = None) -> Stored:
        lines = passport()
        mrz, problem = read_mrz_text(lines, today=datetime.now(UTC).date())
        assert mrz is not None, problem
        images = (jpeg((200, 40, 40)), jpeg((40, 200, 40)), jpeg((40, 40, 200)), jpeg((9, 9, 9)))
        exam = Examination(
            document_image=images[0],
            selfie_image=images[1],
            frames=images[2:],
            mrz=mrz,
            mrz_problem=None,
            name_confirmed=True,
            face=FaceCheck(distance=0.55, match=0.5, review=0.6),  # the review band
            face_problem=None,
            liveness=LivenessCheck(True, (), FaceCheck(0.33, 0.5, 0.6)),
        )
        with self.engine.connect() as conn:
            user = get_user(conn, email)
        case = service.verify_document(
            self.engine,
            EvidenceVault.open(self.settings.identity),
            self.audit,
            user.id,
            exam,
            method=VerificationMethod.REMOTE,
            max_age_days=self.settings.policy.verification_max_age_days,
            cip_settings=cip_settings,
        )
        assert case.status is Outcome.REVIEW and "face_uncertain" in case.reasons, case
        return Stored(case.id, user.subject_id, images)

    def grant(self, email: str = REVIEWER, role: str = operators.REVIEWER) -> str:
        """Give `email` the role; returns the actor name its portal actions carry."""
        with self.engine.connect() as conn:
            user = get_user(conn, email)
        operators.grant(self.engine, self.audit, user.id, role, actor="test:lead")
        return f"portal:{user.subject_id}"

    def revoke(self, email: str = REVIEWER, role: str = operators.REVIEWER) -> None:
        with self.engine.connect() as conn:
            user = get_user(conn, email)
        operators.revoke(self.engine, self.audit, user.id, role, actor="test:lead")

    def entries(self, **fields: object) -> list[dict[str, object]]:
        """Audit entries whose fields include `fields`, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(audit_entries.c.entry).order_by(audit_entries.c.idx))
            decoded = [json.loads(r.entry) for r in rows]
        return [e for e in decoded if all(e.get(k) == v for k, v in fields.items())]
