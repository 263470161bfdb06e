"""What each verification reason code means to the person who got it, and what to do next."""

from __future__ import annotations

from clearance.identity.models import Reason

_RETAKE = "Take a new, sharp photo of the whole data page, flat and well lit, and try again."

TEXT: dict[str, str] = {
    Reason.MRZ_NOT_FOUND: "We could not find the machine-readable lines on the document. "
    + _RETAKE,
    Reason.MRZ_FORMAT: "The machine-readable lines could not be read in full. " + _RETAKE,
    Reason.MRZ_CHECK_DIGIT: "A check digit on the document did not match. " + _RETAKE,
    Reason.MRZ_FIELD: "A field on the document (a date, sex or type) is not valid. " + _RETAKE,
    Reason.MRZ_UNKNOWN_CODE: "The document names a country code we do not know. " + _RETAKE,
    Reason.MRZ_INVALID: "The document's machine-readable lines are not valid. " + _RETAKE,
    Reason.SPECIMEN: "This is a specimen document, not one issued to a person.",
    Reason.DOCUMENT_EXPIRED: "The document has expired. Use a document that is still valid.",
    Reason.UNSUPPORTED_DOCUMENT: "This kind of document (a visa) does not prove nationality. "
    "Use a passport or an identity card.",
    Reason.DOCUMENT_REUSED: "This document already backs another account. "
    "Contact support if that is wrong.",
    Reason.NATIONALITY_DIFFERS: "The nationality differs from the issuing state: a person "
    "will check it.",
    Reason.NATIONALITY_NOT_ESTABLISHED: "The document does not establish a nationality: "
    "a person will check it.",
    Reason.OCR_REPAIR_UNCHECKED: "Part of the document was hard to read: a person will check it.",
    Reason.NAME_MISMATCH: "The name on the document differs from the name you gave: "
    "a person will check it.",
    Reason.NAME_NOT_DECLARED: "You have not given your name: a person will check the document.",
    Reason.BIRTH_DATE_MISMATCH: "The date of birth differs from the one you gave: "
    "a person will check it.",
    Reason.SCREEN_REPLAY_SUSPECTED: "The photo looks taken of a screen, not of the document "
    "itself: a person will check it. Next time photograph the document itself.",
    Reason.FACE_MISMATCH: "The selfie does not match the portrait on the document.",
    Reason.FACE_UNCERTAIN: "The selfie and the portrait are not clearly the same person: "
    "a person will check them.",
    Reason.FACE_UNUSABLE: "We need exactly one face on the portrait and on the selfie: "
    "a person will check them, or try again with clearer photos.",
    Reason.LIVENESS_MISSING: "The camera challenge was not taken: a person will check your photos.",
    Reason.LIVENESS_FAILED: "The camera challenge did not show the head turns and the blink. "
    "Try again in good light, facing the camera.",
    Reason.LIVENESS_OTHER_PERSON: "The camera challenge showed a different person.",
    Reason.ASSERTION_NO_NATIONALITY: "Your identity provider did not state a nationality.",
    Reason.VENDOR_DECLINED: "The verification provider declined the verification.",
    Reason.VENDOR_REVIEW: "The verification provider could not decide: a person will check it.",
    Reason.REVIEWER_DECISION: "A reviewer decided this case.",
}


def explain(code: str) -> str:
    return TEXT.get(code, code.replace("_", " ").capitalize() + ".")
