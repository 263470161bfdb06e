"""Identity verification data: what the edge observed, what was decided, and the stored cases.

The edge (`examine.py`: image loading, OCR, face match, liveness) produces an `Examination`;
the pure `decision.decide` turns it into a `Verdict`; `service.py` stores it as a `Case`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from cryptography import x509

from clearance.identity.chip import PaPolicy
from clearance.identity.mrz import MrzResult
from clearance.principals.models import UsPerson


class Outcome(StrEnum):
    VERIFIED = "verified"
    REJECTED = "rejected"
    REVIEW = "review"


class VerificationMethod(StrEnum):
    REMOTE = "remote"  # the user took the selfie: liveness frames are required
    IN_PERSON = "in_person"  # an operator took the selfie in front of the person


class Reason(StrEnum):
    """Reason codes shown to the user and written to the audit log (never personal data)."""

    # the document (rejected)
    MRZ_NOT_FOUND = "mrz_not_found"
    MRZ_FORMAT = "mrz_format"
    MRZ_CHECK_DIGIT = "mrz_check_digit"
    MRZ_FIELD = "mrz_field"
    MRZ_UNKNOWN_CODE = "mrz_unknown_code"
    MRZ_INVALID = "mrz_invalid"
    SPECIMEN = "specimen_document"
    DOCUMENT_EXPIRED = "document_expired"
    UNSUPPORTED_DOCUMENT = "unsupported_document"  # a visa proves no identity
    DOCUMENT_REUSED = "document_reused"  # already backs another account
    # the document (review): fields no check digit covers
    NATIONALITY_DIFFERS = "nationality_differs_from_issuer"
    NATIONALITY_NOT_ESTABLISHED = "nationality_not_established"
    OCR_REPAIR_UNCHECKED = "ocr_repair_unchecked"
    NAME_NOT_IN_VISUAL_ZONE = "name_not_in_visual_zone"  # the MRZ name is not printed above it
    NAME_MISMATCH = "name_mismatch"
    NAME_NOT_DECLARED = "name_not_declared"
    BIRTH_DATE_MISMATCH = "birth_date_mismatch"
    # the photo (review): the page looks photographed off a display (document/replay.py)
    SCREEN_REPLAY_SUSPECTED = "screen_replay_suspected"
    # the chip (rejected): Passive Authentication failed, ICAO 9303-11 §5.1 (errors.ChipError)
    CHIP_MALFORMED = "chip_malformed"
    CHIP_ALGORITHM = "chip_algorithm"
    CHIP_SIGNATURE = "chip_signature"
    CHIP_CERTIFICATE = "chip_certificate"
    CHIP_UNTRUSTED = "chip_untrusted"
    CHIP_HASH_MISMATCH = "chip_hash_mismatch"
    CHIP_INVALID = "chip_invalid"
    # the person
    FACE_MISMATCH = "face_mismatch"  # rejected
    FACE_UNCERTAIN = "face_uncertain"  # review
    FACE_UNUSABLE = "face_unusable"  # review: no face, or several, on portrait or selfie
    LIVENESS_MISSING = "liveness_missing"  # review: remote without a challenge
    LIVENESS_FAILED = "liveness_failed"  # rejected: retry the challenge
    LIVENESS_OTHER_PERSON = "liveness_other_person"  # rejected
    # assertions
    ASSERTION_NO_NATIONALITY = "assertion_no_nationality"  # rejected
    VENDOR_DECLINED = "vendor_declined"  # rejected: the vendor's own verdict
    VENDOR_REVIEW = "vendor_review"  # review: the vendor could not decide
    # an operator's decision on a review case
    REVIEWER_DECISION = "reviewer_decision"


REJECTING = frozenset(
    {
        Reason.MRZ_NOT_FOUND,
        Reason.MRZ_FORMAT,
        Reason.MRZ_CHECK_DIGIT,
        Reason.MRZ_FIELD,
        Reason.MRZ_UNKNOWN_CODE,
        Reason.MRZ_INVALID,
        Reason.SPECIMEN,
        Reason.DOCUMENT_EXPIRED,
        Reason.UNSUPPORTED_DOCUMENT,
        Reason.DOCUMENT_REUSED,
        Reason.FACE_MISMATCH,
        Reason.LIVENESS_FAILED,
        Reason.LIVENESS_OTHER_PERSON,
        Reason.ASSERTION_NO_NATIONALITY,
        Reason.VENDOR_DECLINED,
        Reason.CHIP_MALFORMED,
        Reason.CHIP_ALGORITHM,
        Reason.CHIP_SIGNATURE,
        Reason.CHIP_CERTIFICATE,
        Reason.CHIP_UNTRUSTED,
        Reason.CHIP_HASH_MISMATCH,
        Reason.CHIP_INVALID,
    }
)


class DocumentAssurance(StrEnum):
    """How the document's data was established: read from its chip and verified by Passive
    Authentication (the issuing state's signature), or read from a photo of the page."""

    CHIP = "chip"
    VISUAL = "visual"


class EvidenceKind(StrEnum):
    DOCUMENT = "document"
    SELFIE = "selfie"
    FRAME = "frame"  # a liveness challenge frame


@dataclass(frozen=True, slots=True)
class FaceCheck:
    """Distance between the document portrait and a live face (dlib embeddings)."""

    distance: float
    match: float  # below: the same person
    review: float  # [match, review): a person looks; at or above: not the same person


@dataclass(frozen=True, slots=True)
class LivenessCheck:
    passed: bool  # the challenge motion (turns, blink) and one person throughout
    reasons: tuple[str, ...]  # liveness.LivenessReason values
    document: FaceCheck | None  # the challenge's face against the document portrait


@dataclass(frozen=True, slots=True)
class ChipCheck:
    """What Passive Authentication found: certificate names and algorithms, no personal data."""

    problem: str | None  # a ChipError code (`chip_hash_mismatch` ...); None: it passed
    detail: str | None  # its finer reason (`dg1_hash_mismatch`, `ds_expired` ...)
    master_list_version: int | None
    csca_fingerprint: str | None = None  # SHA-256 of the CSCA certificate that anchored it
    signature_algorithm: str | None = None
    digest_algorithm: str | None = None


@dataclass(frozen=True, slots=True)
class ChipFiles:
    """EF.DG1, EF.DG2 and EF.SOD as the phone read them from the chip."""

    dg1: bytes
    dg2: bytes
    sod: bytes


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    """The CSCA master list in force (`identity.csca`) and the algorithm policy."""

    cscas: tuple[x509.Certificate, ...]
    version: int | None
    policy: PaPolicy


@dataclass(frozen=True, slots=True)
class Examination:
    """Everything the edge observed for one document verification."""

    document_image: bytes  # re-encoded JPEG (metadata dropped), for the vault
    selfie_image: bytes
    frames: tuple[bytes, ...]  # re-encoded liveness frames
    mrz: MrzResult | None  # None when the MRZ was refused; then `mrz_problem` says why
    mrz_problem: str | None  # an MrzError code
    name_confirmed: bool  # no unchecked OCR repair touched the name, codes or sex
    face: FaceCheck | None  # None when `face_problem` says why
    face_problem: str | None  # a FaceError code
    liveness: LivenessCheck | None  # None when no frames were given
    assurance: DocumentAssurance = DocumentAssurance.VISUAL
    chip: ChipCheck | None = None  # the chip path only
    # Whether the visual zone, read by the same OCR, shows the MRZ name (9303-3 §3.4); None when
    # it was not looked at (no MRZ read, the chip path, an MRZ given as text).
    visual_zone_name: bool | None = None
    # OCR repairs of unchecked fields that a second reading confirmed (the name by the visual
    # zone, a state code by the other code), kept with the case ("line 1 position 7");
    # `name_confirmed` is then True.
    confirmed_repairs: tuple[str, ...] = ()
    portrait_detection: str | None = None  # face.Detection of the document portrait
    portrait_ghosts: int = 0  # further faces of the same person on the document (ghost images)
    # Share of the page's tiles showing a display's rainbow moire (document/replay.py) and
    # whether that makes it a suspected screen replay; None when no photo of a page was looked at.
    screen_replay_share: float | None = None
    screen_replay_suspected: bool = False


@dataclass(frozen=True, slots=True)
class DocumentSummary:
    type: str  # passport | identity_card | residence_permit | visa | other
    issuing_state: str  # ISO 3166-1 alpha-2 where one exists, else the ICAO code
    expiry: date


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Outcome
    reasons: tuple[Reason, ...]
    nationalities: tuple[str, ...]  # ISO 3166-1 alpha-2
    us_person: UsPerson
    document: DocumentSummary | None
    face: FaceCheck | None
    expires: date | None  # the document's expiry; the service caps it at the maximum age
    assurance: DocumentAssurance | None = None  # of the document; None without one
    confirmed_repairs: tuple[str, ...] = ()  # unchecked OCR repairs a second reading confirmed
    screen_replay_share: float | None = None  # Examination.screen_replay_share


@dataclass(frozen=True, slots=True)
class Evidence:
    id: str
    kind: EvidenceKind
    erased: bool


@dataclass(frozen=True, slots=True)
class Case:
    id: int
    user_id: int
    subject: str
    status: Outcome
    method: str
    source: str  # verification | assertion
    reasons: tuple[str, ...]
    nationalities: tuple[str, ...]
    us_person: UsPerson
    expires: date | None
    document: DocumentSummary | None
    face: FaceCheck | None
    created_at: datetime
    decided_by: str | None
    decision_note: str | None
    audit_index: int | None
    evidence: tuple[Evidence, ...]
    assurance: str | None = None  # DocumentAssurance of the document; None without one


def verdict_json(case: Case) -> dict[str, Any]:
    """The `--json` shape of issue 5: status, nationalities, us_person, document, face, reasons."""
    doc, face = case.document, case.face
    return {
        "status": case.status.value,
        "nationalities": list(case.nationalities),
        "us_person": case.us_person.value,
        "document": {
            "type": doc.type if doc else None,
            "issuing_state": doc.issuing_state if doc else None,
            "expiry": doc.expiry.isoformat() if doc else None,
        },
        "face": {
            "distance": round(face.distance, 4) if face else None,
            "threshold": face.match if face else None,
        },
        "reasons": list(case.reasons),
    }
