"""The document verification job, as a runner runs it: unseal the staged uploads, decode them,
examine them (OCR, face match, liveness), then decide and store through
`identity.service.verify_document`, which binds the case to the job in the case's transaction.

Exactly once: a job whose case is already stored (its runner died after storing it) is not
examined again; its decision is audited and applied if that had not happened yet
(`identity.service.finish_document`), and the job is marked done. A runner whose lease was taken
over stores nothing (`service.LeaseLost` rolls its case back).

Input that cannot be used (not decodable, over the pixel limit, uploads gone from the vault)
ends the job `rejected` with the reason at once: trying again would not change it.

A job whose payload holds chip files (`payload["chip"]`: DG1, DG2, EF.SOD) is examined by
`chip.ChipVerifications` (Passive Authentication, the selfie against DG2's portrait) and then
stored, bound and finished exactly as a photo's.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from clearance.audit.sink import AuditSink
from clearance.config import Settings
from clearance.errors import InvalidInput, NotFound, VerificationError
from clearance.identity import service as identity
from clearance.identity.document import LoadedImage, load_image
from clearance.identity.models import Case, VerificationMethod
from clearance.identity.vault import EvidenceVault
from clearance.jobs import chip, service
from clearance.jobs.models import Job
from clearance.jobs.uploads import Uploads, labelled, unseal, unstage

if TYPE_CHECKING:
    from clearance.identity.document.ocr import MrzReader

log = logging.getLogger("clearance.jobs")


def load(uploads: Uploads) -> tuple[LoadedImage, LoadedImage, list[LoadedImage]]:
    """Decode every image once under the limits; the error names the file at fault."""
    loaded = []
    for label, data in labelled(uploads):
        try:
            loaded.append(load_image(data))
        except InvalidInput as exc:
            raise type(exc)(f"{label}: {exc.detail}") from None
    return loaded[0], loaded[1], loaded[2:]


class Verifications:
    """One runner's verification handler: the models and the vault, loaded once."""

    def __init__(self, settings: Settings, engine: Engine, audit: AuditSink) -> None:
        self._settings = settings
        self._engine = engine
        self._audit = audit
        self._reader: MrzReader | None = None
        self._vault: EvidenceVault | None = None
        self._chip: chip.ChipVerifications | None = None

    @property
    def vault(self) -> EvidenceVault:
        if self._vault is None:
            self._vault = EvidenceVault.open(self._settings.identity)
        return self._vault

    def warm(self) -> None:
        """Load the OCR and face models now (seconds), not inside the first job's time limit."""
        from clearance.identity.biometrics import face  # noqa: F401 - imported for its models
        from clearance.identity.document.ocr import MrzReader

        if self._reader is None:
            self._reader = MrzReader()

    def run(self, job: Job) -> Case | None:
        """Run `job` to its end (done or rejected); None if it was rejected or taken over."""
        method = VerificationMethod(job.payload["method"])
        if job.case is None and chip.is_chip(job.payload):
            if self._chip is None:
                self._chip = chip.ChipVerifications(
                    self._settings, self._engine, self._audit, self.vault
                )
            return self._chip.run(job)
        if job.case is not None:
            case = self._finish(job.case, method)
        else:
            try:
                uploads = unseal(self.vault, job.payload)
                document, selfie, frames = load(uploads)
            except (InvalidInput, NotFound, VerificationError) as exc:
                if service.reject(self._engine, job, exc.detail):
                    self.discard(job)
                return None
            case = self._verify(job, method, document, selfie, frames)
        if not service.complete(self._engine, job):
            raise service.LeaseLost(f"job {job.id} attempt {job.attempts}")
        self.discard(job)
        return case

    def discard(self, job: Job) -> None:
        """Erase the staged uploads (the case holds its own re-encoded copies)."""
        if chip.is_chip(job.payload):
            chip.unstage(self.vault, job.payload)
        else:
            unstage(self.vault, job.payload)

    def _finish(self, case_id: int, method: VerificationMethod) -> Case:
        return identity.finish_document(
            self._engine,
            self._audit,
            case_id,
            method=method,
            max_age_days=self._settings.policy.verification_max_age_days,
        )

    def _verify(
        self,
        job: Job,
        method: VerificationMethod,
        document: LoadedImage,
        selfie: LoadedImage,
        frames: list[LoadedImage],
    ) -> Case:
        from clearance.identity.examine import examine

        self.warm()
        assert self._reader is not None
        ids = self._settings.identity
        exam = examine(
            document,
            selfie,
            frames,
            reader=self._reader,
            match=ids.face_match_threshold,
            review=ids.face_review_threshold,
            today=datetime.now(UTC).date(),
        )
        if job.user_id is None:
            raise NotFound(f"job {job.id} names no person")
        return identity.verify_document(
            self._engine,
            self.vault,
            self._audit,
            job.user_id,
            exam,
            method=method,
            max_age_days=self._settings.policy.verification_max_age_days,
            within=lambda conn, case_id: service.store_case(conn, job, case_id),
            cip_settings=self._settings.cip,
        )
