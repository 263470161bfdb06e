"""The portal's one seam to identity verification: "verify this person with these images".

Images are decoded first through `identity.images.load_image` (type sniffed from the content,
byte and pixel limits), so a bad upload is refused with a clear message, naming which file,
before any model loads or anything is stored. Then `identity.examine` reads the document, matches
the faces and checks the liveness frames, and `identity.service.verify_document` decides,
stores the evidence encrypted, audits and applies the facts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from clearance.audit.sink import AuditSink
from clearance.config import Settings
from clearance.errors import InvalidInput
from clearance.identity import service
from clearance.identity.images import LoadedImage, load_image
from clearance.identity.models import Case, VerificationMethod
from clearance.identity.vault import EvidenceVault

if TYPE_CHECKING:
    from clearance.identity.ocr import MrzReader

MAX_FRAMES = 30


@dataclass(frozen=True, slots=True)
class Uploads:
    document: bytes
    selfie: bytes
    frames: tuple[bytes, ...]  # the liveness challenge, in capture order


def _load(label: str, data: bytes) -> LoadedImage:
    try:
        return load_image(data)
    except InvalidInput as exc:
        raise type(exc)(f"{label}: {exc.detail}") from None


def load(uploads: Uploads) -> tuple[LoadedImage, LoadedImage, list[LoadedImage]]:
    """Decode every image once under the limits; the error names the file at fault."""
    if len(uploads.frames) > MAX_FRAMES:
        raise InvalidInput(f"at most {MAX_FRAMES} liveness frames are accepted")
    frames = [_load(f"liveness frame {i + 1}", f) for i, f in enumerate(uploads.frames)]
    return (
        _load("the document photo", uploads.document),
        _load("the selfie", uploads.selfie),
        frames,
    )


class Verifier:
    def __init__(self, settings: Settings, engine: Engine, audit: AuditSink) -> None:
        self._settings = settings
        self._engine = engine
        self._audit = audit
        self._lock = threading.Lock()
        self._reader: MrzReader | None = None
        self._vault: EvidenceVault | None = None

    def _tools(self) -> tuple[MrzReader, EvidenceVault]:
        # The OCR and face models take seconds to load: once, on the first verification.
        from clearance.identity.ocr import MrzReader

        with self._lock:
            if self._reader is None:
                self._reader = MrzReader()
            if self._vault is None:
                self._vault = EvidenceVault.open(self._settings.identity)
            return self._reader, self._vault

    def verify(self, user_id: int, uploads: Uploads) -> Case:
        """Blocking (seconds of CPU): call it from a worker thread."""
        from clearance.identity.examine import examine

        document, selfie, frames = load(uploads)
        reader, vault = self._tools()
        ids = self._settings.identity
        exam = examine(
            document,
            selfie,
            frames,
            reader=reader,
            match=ids.face_match_threshold,
            review=ids.face_review_threshold,
            today=datetime.now(UTC).date(),
        )
        return service.verify_document(
            self._engine,
            vault,
            self._audit,
            user_id,
            exam,
            method=VerificationMethod.REMOTE,
            max_age_days=self._settings.policy.verification_max_age_days,
        )
