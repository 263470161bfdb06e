"""The verification decision: verified, rejected or review, with reasons. Pure.

Rejected: the evidence shows the claim is false or unusable (a check digit fails, a specimen,
an expired or reused document, another person's face). Review: nothing is wrong for certain,
but something no check digit covers disagrees (nationality, name, a face in the grey band), or
the page looks photographed off a screen, and a person must look. Verified: nothing of either.

US-person status (15 CFR 772.1 "U.S. person"; 8 U.S.C. 1101(a)(20)) from the document alone:
a US passport means a citizen; a US permanent resident card (TD1, document code C, 9303-5 note k)
a lawful permanent resident; anything else none.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from clearance.errors import MrzError
from clearance.identity.models import (
    REJECTING,
    DocumentSummary,
    Examination,
    FaceCheck,
    Outcome,
    Reason,
    Verdict,
    VerificationMethod,
)
from clearance.identity.mrz import CodeKind, DocumentFormat, MrzResult, parse_mrz
from clearance.identity.names import name_agrees
from clearance.principals.models import UsPerson

_MRZ_REASONS = {r.value: r for r in Reason if r.value.startswith(("mrz_", "specimen"))}
_CHIP_REASONS = {r.value: r for r in Reason if r.value.startswith("chip_")}


def read_mrz_text(text: str | Iterable[str], *, today: date) -> tuple[MrzResult | None, str | None]:
    """The seam for an MRZ already read as text (a reader device, a test): the parsed result,
    or None and the refusal's code (`mrz_check_digit`, `specimen_document` ...)."""
    try:
        return parse_mrz(text, today=today), None
    except MrzError as exc:
        return None, exc.code


def document_type(mrz: MrzResult) -> str:
    """9303-4 §4.2.2.1 (P: passport), 9303-5 note k (A, C, I: official travel documents),
    9303-7 (V: visa). C is by convention a residence card; A and I identity cards."""
    first = mrz.document_code[0]
    if first == "P":
        return "passport"
    if first == "V":
        return "visa"
    if first == "C" and mrz.format is DocumentFormat.TD1:
        return "residence_permit"
    if first in "AI":
        return "identity_card"
    return "other"


def summarise(mrz: MrzResult) -> DocumentSummary:
    state = mrz.issuing_state
    return DocumentSummary(document_type(mrz), state.alpha2 or state.icao, mrz.expiry_date)


def us_person(mrz: MrzResult) -> UsPerson:
    issued_by_us = mrz.issuing_state.alpha2 == "US"
    kind = document_type(mrz)
    if issued_by_us and kind == "passport" and mrz.nationality.alpha2 == "US":
        return UsPerson.CITIZEN
    if issued_by_us and kind == "residence_permit":
        return UsPerson.LPR
    return UsPerson.NONE


def _face_reasons(face: FaceCheck, *, other_person: Reason) -> list[Reason]:
    if face.distance < face.match:
        return []
    return [Reason.FACE_UNCERTAIN] if face.distance < face.review else [other_person]


def _person_reasons(exam: Examination, method: VerificationMethod) -> list[Reason]:
    reasons: list[Reason] = []
    if exam.face is None:
        reasons.append(Reason.FACE_UNUSABLE)
    else:
        reasons += _face_reasons(exam.face, other_person=Reason.FACE_MISMATCH)
    if method is VerificationMethod.REMOTE:
        live = exam.liveness
        if live is None:
            reasons.append(Reason.LIVENESS_MISSING)
        elif not live.passed:
            reasons.append(Reason.LIVENESS_FAILED)
        elif live.document is None:
            reasons.append(Reason.FACE_UNUSABLE)
        else:
            reasons += _face_reasons(live.document, other_person=Reason.LIVENESS_OTHER_PERSON)
    return reasons


def _nationality_reasons(mrz: MrzResult) -> list[Reason]:
    reasons: list[Reason] = []
    if mrz.nationality.alpha2 is None:
        # Stateless, refugee, organisation, British class, Kosovo: no ISO nationality to record.
        reasons.append(Reason.NATIONALITY_NOT_ESTABLISHED)
    # A passport or identity card is issued by the holder's own state (9303-3 §5); a residence
    # card by the host state, so only there may the two differ. Nationality has no check digit.
    if document_type(mrz) != "residence_permit" and mrz.nationality_differs_from_issuer:
        reasons.append(Reason.NATIONALITY_DIFFERS)
    return reasons


def _document_reasons(
    exam: Examination,
    mrz: MrzResult,
    *,
    declared_name: str | None,
    declared_birth: date | None,
    today: date,
    reused: bool,
) -> list[Reason]:
    reasons: list[Reason] = []
    if document_type(mrz) == "visa":
        reasons.append(Reason.UNSUPPORTED_DOCUMENT)
    if mrz.expiry_date < today:
        reasons.append(Reason.DOCUMENT_EXPIRED)
    if reused:
        reasons.append(Reason.DOCUMENT_REUSED)
    reasons += _nationality_reasons(mrz)
    if not exam.name_confirmed:
        reasons.append(Reason.OCR_REPAIR_UNCHECKED)
    if exam.visual_zone_name is False:
        # 9303-3 §3.4: the VIZ prints the name the MRZ encodes; an MRZ name edited alone, or
        # misread, is not there. No check digit covers the name (9303-3 §4.9).
        reasons.append(Reason.NAME_NOT_IN_VISUAL_ZONE)
    if not declared_name:
        reasons.append(Reason.NAME_NOT_DECLARED)
    elif not name_agrees(
        declared_name,
        mrz.primary_identifier,
        mrz.secondary_identifier,
        truncated=mrz.name_possibly_truncated,
    ):
        reasons.append(Reason.NAME_MISMATCH)
    if declared_birth and mrz.birth_date and declared_birth != mrz.birth_date:
        reasons.append(Reason.BIRTH_DATE_MISMATCH)
    return reasons


def outcome(reasons: tuple[Reason, ...]) -> Outcome:
    if any(r in REJECTING for r in reasons):
        return Outcome.REJECTED
    return Outcome.REVIEW if reasons else Outcome.VERIFIED


def decide(
    exam: Examination,
    *,
    method: VerificationMethod,
    declared_name: str | None,
    declared_birth: date | None,
    today: date,
    reused: bool,
) -> Verdict:
    """`reused`: the document's digest already backs another account."""
    reasons: list[Reason] = []
    mrz = exam.mrz
    chip_problem = exam.chip.problem if exam.chip is not None else None
    if chip_problem is not None:
        # Passive Authentication failed (ICAO 9303-11 §5.1): nothing the chip says is trusted.
        reasons.append(_CHIP_REASONS.get(chip_problem, Reason.CHIP_INVALID))
        mrz = None
    elif mrz is None:
        reasons.append(_MRZ_REASONS.get(exam.mrz_problem or "", Reason.MRZ_INVALID))
    else:
        reasons += _document_reasons(
            exam,
            mrz,
            declared_name=declared_name,
            declared_birth=declared_birth,
            today=today,
            reused=reused,
        )
    if exam.screen_replay_suspected:
        # A presentation attack on the camera: the page shown on a display, not the document.
        # Review, not rejection: a person looks (a genuine page's fine print can trip it).
        reasons.append(Reason.SCREEN_REPLAY_SUSPECTED)
    if chip_problem is None:  # without a trusted portrait there is no face to judge
        reasons += _person_reasons(exam, method)
    unique = tuple(dict.fromkeys(reasons))
    nationalities: tuple[str, ...] = ()
    if mrz is not None and mrz.nationality.alpha2 and mrz.nationality.kind is CodeKind.STATE:
        nationalities = (mrz.nationality.alpha2,)
    return Verdict(
        status=outcome(unique),
        reasons=unique,
        nationalities=nationalities,
        us_person=us_person(mrz) if mrz is not None else UsPerson.NONE,
        document=summarise(mrz) if mrz is not None else None,
        face=exam.face,
        expires=mrz.expiry_date if mrz is not None else None,
        assurance=exam.assurance if mrz is not None else None,
        confirmed_repairs=exam.confirmed_repairs if mrz is not None else (),
        screen_replay_share=exam.screen_replay_share,
    )
