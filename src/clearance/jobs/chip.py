"""A chip verification, from the request to the worker: EF.DG1, EF.DG2 and EF.SOD as a phone
read them from the passport's chip, a selfie and the liveness frames.

It is a document verification (`JobKind.VERIFY_DOCUMENT`) whose payload names chip files
instead of a photo of the page (`payload["chip"]`): the queue, leases, retries, the exactly-once
binding of the case and the rejection of unusable input are the same as for a photo
(`verification.py`, which hands such jobs to `ChipVerifications`).

The serving process checks only what needs no key and no pixel (`precheck`: sizes, the BER-TLV
structure under its depth limits, that the SOD lists DG1 and DG2, the selfie's type); Passive
Authentication against the CSCA master list and the face match run in the worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from clearance.audit.sink import AuditSink
from clearance.config import Settings
from clearance.errors import ChipError, InvalidInput, NotFound, VerificationError
from clearance.identity import service as identity
from clearance.identity.chip import PaPolicy
from clearance.identity.chip import precheck as chip_precheck
from clearance.identity.csca import TrustCache
from clearance.identity.document import LoadedImage, load_image
from clearance.identity.models import Case, ChipFiles, VerificationMethod
from clearance.identity.vault import EvidenceVault
from clearance.jobs import service
from clearance.jobs.models import Job
from clearance.jobs.uploads import MAX_FRAMES, Uploads, enqueue_staged
from clearance.jobs.uploads import precheck as image_precheck


@dataclass(frozen=True, slots=True)
class ChipUploads:
    files: ChipFiles
    selfie: bytes
    frames: tuple[bytes, ...]


def is_chip(payload: Mapping[str, Any]) -> bool:
    return "chip" in payload


def pa_policy(settings: Settings) -> PaPolicy:
    ids = settings.identity
    return PaPolicy(
        allow_sha1=ids.chip_allow_sha1,
        min_rsa_bits=ids.chip_min_rsa_bits,
    )


def precheck(uploads: ChipUploads) -> None:
    """Sizes and structure of the chip files, then the selfie and frames as images are checked.
    A refusal names the file and says why (`ChipFormatError`, 422; an image: 413/415)."""
    try:
        chip_precheck(uploads.files.dg1, uploads.files.dg2, uploads.files.sod)
    except ChipError as exc:
        raise type(exc)(exc.detail, reason=exc.reason) from None
    if len(uploads.frames) > MAX_FRAMES:
        raise InvalidInput(f"at most {MAX_FRAMES} liveness frames are accepted")
    # The image checks of a photo upload, with the selfie in the document's place.
    image_precheck(Uploads(uploads.selfie, uploads.selfie, uploads.frames))


def stage(vault: EvidenceVault, uploads: ChipUploads, method: VerificationMethod) -> dict[str, Any]:
    files = uploads.files
    chip = {name: vault.put(data).id for name, data in (("dg1", files.dg1), ("dg2", files.dg2))}
    chip["sod"] = vault.put(files.sod).id
    return {
        "method": method.value,
        "chip": chip,
        "selfie": vault.put(uploads.selfie).id,
        "frames": [vault.put(frame).id for frame in uploads.frames],
    }


def staged_ids(payload: Mapping[str, Any]) -> list[str]:
    chip = payload["chip"]
    return [*(str(chip[k]) for k in ("dg1", "dg2", "sod")), str(payload["selfie"])] + [
        str(i) for i in payload["frames"]
    ]


def unseal(vault: EvidenceVault, payload: Mapping[str, Any]) -> ChipUploads:
    chip = payload["chip"]
    files = ChipFiles(*(vault.get(str(chip[k])) for k in ("dg1", "dg2", "sod")))
    frames = tuple(vault.get(str(i)) for i in payload["frames"])
    return ChipUploads(files, vault.get(str(payload["selfie"])), frames)


def unstage(vault: EvidenceVault, payload: Mapping[str, Any]) -> None:
    for evidence_id in staged_ids(payload):
        vault.erase(evidence_id)


def enqueue(
    engine: Engine,
    vault: EvidenceVault,
    uploads: ChipUploads,
    *,
    user_id: int,
    method: VerificationMethod,
    max_attempts: int,
    max_pending: int,
) -> int:
    """As `uploads.enqueue_verification`: room checked, files sealed, the job queued, and the
    sealed files erased again if the job is not stored."""
    return enqueue_staged(
        engine,
        lambda: stage(vault, uploads, method),
        lambda payload: unstage(vault, payload),
        user_id=user_id,
        max_attempts=max_attempts,
        max_pending=max_pending,
    )


def load(uploads: ChipUploads) -> tuple[LoadedImage, list[LoadedImage]]:
    """Decode the selfie and the frames under the image limits; the error names the file."""
    named = [("the selfie", uploads.selfie)]
    named += [(f"liveness frame {i + 1}", f) for i, f in enumerate(uploads.frames)]
    loaded = []
    for name, data in named:
        try:
            loaded.append(load_image(data))
        except InvalidInput as exc:
            raise type(exc)(f"{name}: {exc.detail}") from None
    return loaded[0], loaded[1:]


class ChipVerifications:
    """The worker's side of a chip job not yet examined (a resumed one is finished by
    `Verifications.run` as any document job)."""

    def __init__(
        self, settings: Settings, engine: Engine, audit: AuditSink, vault: EvidenceVault
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._audit = audit
        self._vault = vault
        self._trust = TrustCache(pa_policy(settings))

    def run(self, job: Job) -> Case | None:
        from clearance.identity.examine import examine_chip

        method = VerificationMethod(job.payload["method"])
        try:
            uploads = unseal(self._vault, job.payload)
            selfie, frames = load(uploads)
        except (InvalidInput, NotFound, VerificationError) as exc:
            if service.reject(self._engine, job, exc.detail):
                unstage(self._vault, job.payload)
            return None
        if job.user_id is None:
            raise NotFound(f"job {job.id} names no person")
        ids = self._settings.identity
        exam = examine_chip(
            uploads.files,
            selfie,
            frames,
            trust=self._trust.get(self._engine),
            match=ids.face_match_threshold,
            review=ids.face_review_threshold,
            now=datetime.now(UTC),
        )
        case = identity.verify_document(
            self._engine,
            self._vault,
            self._audit,
            job.user_id,
            exam,
            method=method,
            max_age_days=self._settings.policy.verification_max_age_days,
            within=lambda conn, case_id: service.store_case(conn, job, case_id),
            cip_settings=self._settings.cip,  # a chip-read document's number, like a photo's
        )
        if not service.complete(self._engine, job):
            raise service.LeaseLost(f"job {job.id} attempt {job.attempts}")
        unstage(self._vault, job.payload)
        return case
