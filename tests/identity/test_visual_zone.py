"""The MRZ name against the visual zone (ICAO 9303-3 §3.4), and OCR repairs a second reading
confirms: the pure comparison, the decision, and the real reader on a synthetic page."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from PIL import Image

from clearance.identity.decision import decide, read_mrz_text
from clearance.identity.document import load_image
from clearance.identity.document.ocr import MrzRead, MrzReader
from clearance.identity.document.repair import Repair
from clearance.identity.examine import _confirmed, examine
from clearance.identity.models import (
    Examination,
    FaceCheck,
    Outcome,
    Reason,
    VerificationMethod,
)
from clearance.identity.mrz import DocumentData, DocumentFormat, Sex, compose
from clearance.identity.names import visual_zone_shows
from tests.fixtures.identity.synth import render_page

TODAY = date.today()
FACES = Path(__file__).parents[1] / "fixtures" / "identity" / "faces"
ANNA = DocumentData(
    format=DocumentFormat.TD3,
    document_code="P",
    issuing_state="SWE",
    nationality="SWE",
    primary_identifier="LINDQVIST",
    secondary_identifier="ANNA MARIA",
    document_number="583920174",  # digits only: nothing else for the OCR to repair
    birth_date=date(1985, 6, 1),
    sex=Sex.FEMALE,
    expiry_date=date(TODAY.year + 4, 6, 30),
)


def shows(lines: list[str], primary: str, secondary: str, truncated: bool = False) -> bool:
    return visual_zone_shows(lines, primary, secondary, truncated=truncated)


def test_the_visual_zone_shows_the_name_as_whole_words() -> None:
    viz = ["PASSPORT/PASSEPORT", "Surname", "LINDQVIST", "Given names", "ANNA MARIA"]
    assert shows(viz, "LINDQVIST", "ANNA MARIA")
    assert shows(["LINDQVIST", "ANNAMARIA"], "LINDQVIST", "ANNA MARIA")  # a space dropped
    assert shows(["MÜLLER", "Jörg"], "MUELLER", "JOERG")  # 9303-3 §6.A
    assert not shows(viz, "INDQVIST", "ANNA MARIA")  # a dropped letter is not a word
    assert shows(viz, "LINDQVIST", "ANNA")  # whole words of the given names
    assert not shows(viz, "LINDQVIST", "ANN")  # but never part of a word
    assert not shows(viz, "NGUYEN", "ANNA MARIA")
    assert not shows(["NGUYEN"], "NGUYEN", "ANNA MARIA")  # the given names are not printed
    assert not shows([], "LINDQVIST", "ANNA MARIA")
    assert shows(["GARCIA-LOPEZ", "JOSE RAMON"], "GARCIA LOPEZ", "JOSE RA", truncated=True)
    assert not shows(["GARCIA-LOPEZ", "JOSE RAMON"], "GARCIA LOPEZ", "JOSE RA")


def read_of(repairs: tuple[Repair, ...], lines: tuple[str, ...] | None = None) -> MrzRead:
    mrz, problem = read_mrz_text(lines or compose(ANNA), today=TODAY)
    assert mrz is not None, problem
    return MrzRead(mrz, repairs, 0.0, 1)


NAME = Repair(0, "class", True, "position 7 read as I", name=True, position=7)
SEX = Repair(1, "class", True, "position 21 read as F", position=21)
NATIONALITY = Repair(1, "class", True, "position 11 read as S", position=11)


def test_a_repair_is_trusted_only_when_a_second_reading_confirms_it() -> None:
    assert _confirmed(read_of(()), False) == (True, ())
    assert _confirmed(read_of((NAME,)), True) == (True, ("line 1 position 7",))
    assert _confirmed(read_of((NAME,)), False) == (False, ())
    # A repaired nationality that the issuing state, read without repair, agrees with.
    assert _confirmed(read_of((NATIONALITY,)), True) == (True, ("line 2 position 11",))
    issuer = Repair(0, "class", True, "position 3 read as S", position=3)
    assert _confirmed(read_of((NATIONALITY, issuer)), True) == (False, ())  # both repaired
    differs = compose(replace(ANNA, nationality="NOR"))
    assert _confirmed(read_of((NATIONALITY,), differs), True) == (False, ())
    assert _confirmed(read_of((SEX,)), True) == (False, ())  # nothing confirms a sex
    assert _confirmed(read_of((NAME, SEX)), True) == (False, ())


def exam_of(**changes: object) -> Examination:
    mrz, _ = read_mrz_text(compose(ANNA), today=TODAY)
    exam = Examination(
        document_image=b"",
        selfie_image=b"",
        frames=(),
        mrz=mrz,
        mrz_problem=None,
        name_confirmed=True,
        face=FaceCheck(0.3, 0.5, 0.6),
        face_problem=None,
        liveness=None,
        visual_zone_name=True,
    )
    return replace(exam, **changes)  # type: ignore[arg-type]


def judged(
    exam: Examination, declared: str = "Anna Maria Lindqvist"
) -> tuple[Outcome, set[Reason]]:
    verdict = decide(
        exam,
        method=VerificationMethod.IN_PERSON,
        declared_name=declared,
        declared_birth=None,
        today=TODAY,
        reused=False,
    )
    return verdict.status, set(verdict.reasons)


def test_an_mrz_name_the_visual_zone_does_not_show_goes_to_review() -> None:
    assert judged(exam_of()) == (Outcome.VERIFIED, set())
    assert judged(exam_of(visual_zone_name=False)) == (
        Outcome.REVIEW,
        {Reason.NAME_NOT_IN_VISUAL_ZONE},
    )
    assert judged(exam_of(visual_zone_name=None)) == (Outcome.VERIFIED, set())  # not looked


def test_a_confirmed_repair_is_kept_with_the_verdict() -> None:
    exam = exam_of(confirmed_repairs=("line 1 position 7",))
    verdict = decide(
        exam,
        method=VerificationMethod.IN_PERSON,
        declared_name="Anna Maria Lindqvist",
        declared_birth=None,
        today=TODAY,
        reused=False,
    )
    assert verdict.status is Outcome.VERIFIED
    assert verdict.confirmed_repairs == ("line 1 position 7",)


@pytest.fixture(scope="module")
def reader() -> Iterator[MrzReader]:
    yield MrzReader()


def examined(reader: MrzReader, viz: tuple[str, str], tmp_path: Path) -> Examination:
    path = tmp_path / "page.png"
    upper, lower = compose(ANNA)
    portrait = Image.open(FACES / "hopper.jpg").convert("RGB")
    render_page(("P<SWEL1NDQVIST" + upper[14:], lower), portrait, viz=viz).save(path)
    document = load_image(path.read_bytes())
    selfie = load_image((FACES / "hopper.jpg").read_bytes())
    return examine(document, selfie, [], reader=reader, match=0.5, review=0.6, today=TODAY)


def test_the_reader_repairs_a_name_and_the_visual_zone_confirms_it(
    reader: MrzReader, tmp_path: Path
) -> None:
    exam = examined(reader, ("LINDQVIST", "ANNA MARIA"), tmp_path)
    assert exam.mrz is not None and exam.mrz.primary_identifier == "LINDQVIST"
    assert exam.visual_zone_name is True and exam.name_confirmed
    assert exam.confirmed_repairs == ("line 1 position 7",)
    assert judged(exam) == (Outcome.VERIFIED, set())


def test_an_mrz_name_edited_away_from_the_visual_zone_is_not_trusted(
    reader: MrzReader, tmp_path: Path
) -> None:
    exam = examined(reader, ("NGUYEN", "ANNA MARIA"), tmp_path)
    assert exam.visual_zone_name is False and not exam.name_confirmed
    status, reasons = judged(exam)
    assert status is Outcome.REVIEW
    assert reasons == {Reason.NAME_NOT_IN_VISUAL_ZONE, Reason.OCR_REPAIR_UNCHECKED}
