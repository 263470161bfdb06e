"""A verification's uploads, from the request to the queue: checked cheaply, sealed in the vault,
and queued by reference.

The serving process only sniffs each file's type and size (`precheck`, no decoding: a file that
is not an image at all is refused at once, naming it); the images themselves are decoded by the
worker, where a corrupt image or a decompression bomb ends the job `rejected` with the reason. In
between the uploads exist only sealed in the evidence vault: the job's payload holds their vault
ids, and the staged files are erased when the job ends, whatever its end.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from clearance.errors import ImageTooLarge, InvalidInput, UnsupportedImage
from clearance.identity.document import ImageLimits, sniff
from clearance.identity.models import VerificationMethod
from clearance.identity.vault import EvidenceVault
from clearance.jobs import service
from clearance.jobs.models import JobKind
from clearance.store import reading

MAX_FRAMES = 30


@dataclass(frozen=True, slots=True)
class Uploads:
    document: bytes
    selfie: bytes
    frames: tuple[bytes, ...]  # the liveness challenge, in capture order


def labelled(uploads: Uploads) -> list[tuple[str, bytes]]:
    """Each file with the name a refusal gives it."""
    return [
        ("the document photo", uploads.document),
        ("the selfie", uploads.selfie),
        *((f"liveness frame {i + 1}", f) for i, f in enumerate(uploads.frames)),
    ]


def precheck(uploads: Uploads, limits: ImageLimits | None = None) -> None:
    """What the serving process checks before queueing: the number of frames, and each file's
    size and type by its first bytes (`images.sniff`). Nothing is decoded here."""
    limits = limits or ImageLimits()
    if len(uploads.frames) > MAX_FRAMES:
        raise InvalidInput(f"at most {MAX_FRAMES} liveness frames are accepted")
    for label, data in labelled(uploads):
        if len(data) > limits.max_bytes:
            raise ImageTooLarge(f"{label}: the image is over {limits.max_bytes >> 20} MiB")
        if sniff(data) is None:
            raise UnsupportedImage(f"{label}: the file is not a JPEG, PNG or WebP image")


def stage(vault: EvidenceVault, uploads: Uploads, method: VerificationMethod) -> dict[str, Any]:
    """Seal the uploads; the payload that refers to them."""
    ids = [vault.put(data).id for _, data in labelled(uploads)]
    return {"method": method.value, "document": ids[0], "selfie": ids[1], "frames": ids[2:]}


def staged_ids(payload: Mapping[str, Any]) -> list[str]:
    if "document" not in payload:  # a job of another kind stages nothing
        return []
    return [str(payload["document"]), str(payload["selfie"]), *map(str, payload["frames"])]


def unseal(vault: EvidenceVault, payload: Mapping[str, Any]) -> Uploads:
    """The uploads again, in the worker (NotFound if erased, VerificationError if altered)."""
    return Uploads(
        vault.get(str(payload["document"])),
        vault.get(str(payload["selfie"])),
        tuple(vault.get(str(i)) for i in payload["frames"]),
    )


def unstage(vault: EvidenceVault, payload: Mapping[str, Any]) -> None:
    for evidence_id in staged_ids(payload):
        vault.erase(evidence_id)


def enqueue_verification(
    engine: Engine,
    vault: EvidenceVault,
    uploads: Uploads,
    *,
    user_id: int,
    method: VerificationMethod,
    max_attempts: int,
    max_pending: int,
) -> int:
    """Check there is room (`QueueFull`), seal the uploads and queue the job; the sealed files
    are erased again if the job is not stored."""
    return enqueue_staged(
        engine,
        lambda: stage(vault, uploads, method),
        lambda payload: unstage(vault, payload),
        user_id=user_id,
        max_attempts=max_attempts,
        max_pending=max_pending,
    )


def enqueue_staged(
    engine: Engine,
    stage_files: Callable[[], dict[str, Any]],
    unstage_files: Callable[[dict[str, Any]], None],
    *,
    user_id: int,
    max_attempts: int,
    max_pending: int,
) -> int:
    """Room checked, the files sealed (`stage_files` returns the job's payload), the job queued;
    the sealed files erased again (`unstage_files`) if the job is not stored. Photo uploads and
    chip files (jobs/chip.py) queue through here."""
    with reading(engine) as conn:
        service.check_room(conn, max_pending)
    payload = stage_files()
    queued = False
    try:
        with engine.begin() as conn:
            job_id = service.enqueue(
                conn, JobKind.VERIFY_DOCUMENT, payload, user_id=user_id, max_attempts=max_attempts
            )
        queued = True
    finally:
        if not queued:
            unstage_files(payload)
    return job_id
