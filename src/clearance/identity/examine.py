"""The edge of a document verification: uploaded bytes in, an `Examination` out.

Images are decoded only through `images.load_image` (type sniffed, size and pixel limits), so a
file that is not an image is refused here with `UnsupportedImage` before anything is stored.
Then the MRZ is read (`ocr.MrzReader`), the document portrait and the selfie are compared
(`face`), and the liveness frames are checked (`liveness`) and matched to the document. Refusals
of the MRZ or of a face are kept as reason codes: they are decisions, not errors.

The chip path (`examine_chip`) replaces the photo of the page by the chip's own data: DG1's MRZ
and DG2's portrait, trusted only after Passive Authentication (`identity.chip`, ICAO 9303-11
§5.1); a refusal there is a reason code too (`chip_hash_mismatch` ...), and then nothing the
chip holds is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from clearance.errors import ChipError, FaceError, MrzError
from clearance.identity.biometrics.face import Face, distance, single_face
from clearance.identity.biometrics.liveness import check_liveness
from clearance.identity.chip import ChipEvidence, decode, passive_authentication
from clearance.identity.document import LoadedImage, load_image
from clearance.identity.document.ocr import MrzReader
from clearance.identity.models import (
    ChipCheck,
    ChipFiles,
    DocumentAssurance,
    Examination,
    FaceCheck,
    LivenessCheck,
    TrustAnchors,
)


def _faces(
    document: LoadedImage, selfie: LoadedImage
) -> tuple[Face | None, Face | None, str | None]:
    try:
        portrait = single_face(document.rgb, role="document portrait")
        live = single_face(selfie.rgb, role="selfie")
    except FaceError as exc:
        return None, None, exc.code
    return portrait, live, None


def _liveness(
    frames: Sequence[LoadedImage], portrait: Face | None, match: float, review: float
) -> LivenessCheck | None:
    if not frames:
        return None
    result = check_liveness([frame.rgb for frame in frames])
    against_document = None
    if portrait is not None and result.reference is not None:
        against_document = FaceCheck(distance(portrait.encoding, result.reference), match, review)
    return LivenessCheck(result.passed, tuple(r.value for r in result.reasons), against_document)


def load_all(
    document: bytes, selfie: bytes, frames: Sequence[bytes]
) -> tuple[LoadedImage, LoadedImage, list[LoadedImage]]:
    """Decode every upload first: one that is not an image is refused before any work."""
    return load_image(document), load_image(selfie), [load_image(frame) for frame in frames]


def examine(
    doc_image: LoadedImage,
    selfie_image: LoadedImage,
    frame_images: Sequence[LoadedImage],
    *,
    reader: MrzReader,
    match: float,
    review: float,
    today: date,
) -> Examination:
    try:
        read = reader.read(doc_image.rgb, today=today)
        mrz, problem, confirmed = read.result, None, not read.unchecked_repairs
    except MrzError as exc:
        mrz, problem, confirmed = None, exc.code, False
    portrait, live, face_problem = _faces(doc_image, selfie_image)
    face = None
    if portrait is not None and live is not None:
        face = FaceCheck(distance(portrait.encoding, live.encoding), match, review)
    return Examination(
        document_image=doc_image.reencode(),
        selfie_image=selfie_image.reencode(),
        frames=tuple(frame.reencode() for frame in frame_images),
        mrz=mrz,
        mrz_problem=problem,
        name_confirmed=confirmed,
        face=face,
        face_problem=face_problem,
        liveness=_liveness(frame_images, portrait, match, review),
    )


def _authenticate(
    files: ChipFiles, trust: TrustAnchors, now: datetime
) -> tuple[ChipEvidence | None, LoadedImage | None, ChipCheck, str | None]:
    """Passive Authentication and the portrait decoded; (evidence, portrait, check, MRZ problem)."""
    try:
        evidence = passive_authentication(
            files.dg1, files.dg2, files.sod, cscas=trust.cscas, at=now, policy=trust.policy
        )
        portrait = decode(evidence.portrait)
    except ChipError as exc:
        return None, None, ChipCheck(exc.code, exc.reason, trust.version), None
    except MrzError as exc:  # the chip is genuine but its MRZ breaks the rules we have
        return None, None, ChipCheck(None, None, trust.version), exc.code
    check = ChipCheck(
        problem=None,
        detail=None,
        master_list_version=trust.version,
        csca_fingerprint=evidence.csca_fingerprint,
        signature_algorithm=evidence.signature_algorithm,
        digest_algorithm=evidence.digest_algorithm,
    )
    return evidence, portrait, check, None


def examine_chip(
    files: ChipFiles,
    selfie_image: LoadedImage,
    frame_images: Sequence[LoadedImage],
    *,
    trust: TrustAnchors,
    match: float,
    review: float,
    now: datetime,
) -> Examination:
    """The chip path: the selfie and the liveness frames are matched against DG2's portrait."""
    evidence, portrait_image, check, mrz_problem = _authenticate(files, trust, now)
    face, face_problem, portrait = None, None, None
    if portrait_image is not None:
        portrait, live, face_problem = _faces(portrait_image, selfie_image)
        if portrait is not None and live is not None:
            face = FaceCheck(distance(portrait.encoding, live.encoding), match, review)
    return Examination(
        # The evidence kept of the document is the chip's portrait (re-encoded like any image).
        document_image=portrait_image.reencode() if portrait_image is not None else b"",
        selfie_image=selfie_image.reencode(),
        frames=tuple(frame.reencode() for frame in frame_images),
        mrz=evidence.mrz if evidence is not None else None,
        mrz_problem=mrz_problem,
        name_confirmed=True,  # read from the chip, not by OCR: nothing was repaired
        face=face,
        face_problem=face_problem,
        liveness=_liveness(frame_images, portrait, match, review),
        assurance=DocumentAssurance.CHIP,
        chip=check,
    )
