"""The edge of a document verification: uploaded bytes in, an `Examination` out.

Images are decoded only through `images.load_image` (type sniffed, size and pixel limits), so a
file that is not an image is refused here with `UnsupportedImage` before anything is stored.
Then the MRZ is read (`ocr.MrzReader`) and its name looked for in the visual zone the same OCR
pass read (`names.visual_zone_shows`), the document portrait and the selfie are compared
(`face`), the page is looked at for a display's moire (`replay`: a photo of a screen), and the
liveness frames are checked (`liveness`) and matched to the document. Refusals
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
from clearance.identity.document.ocr import MrzRead, MrzReader
from clearance.identity.document.repair import Repair, code_field
from clearance.identity.document.replay import screen_replay
from clearance.identity.models import (
    ChipCheck,
    ChipFiles,
    DocumentAssurance,
    Examination,
    FaceCheck,
    LivenessCheck,
    TrustAnchors,
)
from clearance.identity.names import visual_zone_shows


def _faces(
    document: LoadedImage, selfie: LoadedImage
) -> tuple[Face | None, Face | None, str | None]:
    try:
        portrait = single_face(document.rgb, role="document portrait", document=True)
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
    viz: bool | None = None
    confirmed_repairs: tuple[str, ...] = ()
    try:
        read = reader.read(doc_image.rgb, today=today)
        mrz, problem = read.result, None
        viz = visual_zone_shows(
            read.visual_zone,
            mrz.primary_identifier,
            mrz.secondary_identifier,
            truncated=mrz.name_possibly_truncated,
        )
        confirmed, confirmed_repairs = _confirmed(read, viz)
    except MrzError as exc:
        mrz, problem, confirmed = None, exc.code, False
    portrait, live, face_problem = _faces(doc_image, selfie_image)
    face = None
    if portrait is not None and live is not None:
        face = FaceCheck(distance(portrait.encoding, live.encoding), match, review)
    replay = screen_replay(doc_image.rgb)
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
        visual_zone_name=viz,
        confirmed_repairs=confirmed_repairs,
        portrait_detection=portrait.detection.value if portrait is not None else None,
        portrait_ghosts=portrait.ghosts if portrait is not None else 0,
        screen_replay_share=round(replay.share, 4),
        screen_replay_suspected=replay.suspected,
    )


def _confirmed(read: MrzRead, visual_zone_name: bool) -> tuple[bool, tuple[str, ...]]:
    """(name_confirmed, the repairs confirmed). Repairs of fields no check digit covers are
    trusted only when each is confirmed by a second, independent reading:

    - a repair in the name, when the visual zone prints the repaired name (read by the same
      OCR pass, 9303-3 §3.4);
    - a repair in the issuing state or the nationality, when the other of the two codes was read
      as the same code with no repair (a passport or identity card is issued by the holder's own
      state, 9303-3 §5; where they differ the decision sends the case to review anyway).

    Anything else (a repaired document code or sex, both codes repaired) stays unchecked."""
    unchecked = [r for r in read.repairs if r.unchecked]
    if not unchecked:
        return True, ()
    mrz = read.result
    width = len(mrz.lines[0])
    fields = {r: code_field(width, r.line, r.position) for r in unchecked}
    repaired_codes = set(fields.values()) - {None}
    codes_agree = mrz.issuing_state.icao == mrz.nationality.icao and len(repaired_codes) == 1

    def confirmed(repair: Repair) -> bool:
        if repair.name:
            return visual_zone_name
        return fields[repair] is not None and codes_agree

    if all(confirmed(r) for r in unchecked):
        return True, tuple(f"line {r.line + 1} position {r.position}" for r in unchecked)
    return False, ()


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
