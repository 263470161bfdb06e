"""A name line, which no check digit covers, is taken only when independent reads agree."""

from __future__ import annotations

import pytest

from clearance.identity.document.consensus import agreed, holds
from clearance.identity.document.pitch import PitchRead

SHORT = "P<GBREXAMPLE<<ADA<<<<<<<<<<<<<<<<<<<<<<<<<<<"  # TD3: a short name, 27 fillers


def read(text: str) -> PitchRead:
    return PitchRead(text, tuple(0.5 for _ in text))


def test_a_short_name_whose_x_the_detector_read_as_a_sign_is_agreed() -> None:
    # Measured on OCR-B pages: the detector reads X as the multiplication sign (or as an
    # element-of sign), and EXAMPLE<<ADA was refused though every pitch read agreed.
    for detected in ("P<GBRE\u00d7APLE<<ADA<<<<<<<<<<<<", "<GBR\u2208AMPLE<<ADA<<<<<<<<<<<<"):
        got = agreed([read(SHORT)] * 3, detected, least=2)
        assert got is not None and got.text == SHORT


def test_one_dissenting_scale_refuses_the_name() -> None:
    other = SHORT.replace("ADA", "A<A")
    assert agreed([read(SHORT), read(SHORT), read(other)], SHORT, least=2) is None


def test_too_few_scales_that_fit_refuse_the_name() -> None:
    assert agreed([read(SHORT), None, None], SHORT, least=2) is None
    assert agreed([read(SHORT), read(SHORT), None], SHORT, least=3) is None


def test_reads_that_differ_only_in_trailing_fillers_agree() -> None:
    # Pitch reads always have the layout's width; the name is compared without trailing fillers.
    assert agreed([read(SHORT), read(SHORT)], "P<GBREXAMPLE<<ADA", least=2) is not None


def test_a_letter_the_detector_saw_and_the_reads_lack_refuses_the_name() -> None:
    # Two scales agreeing on NGU<EN while the detector saw the Y: refused.
    line = "P<GBRNGU<EN<<JOHAN<<<<<<<<<<<<<<<<<<<<<<<<<<"
    assert agreed([read(line)] * 3, "P<GBRNGUYEN<<JOHAN<<<<<", least=2) is None


@pytest.mark.parametrize(
    ("text", "part", "expected"),
    [
        ("EXAMPLE<<ADA", "EAPLE<<ADA", True),  # dropped letters
        ("EXAMPLE<<ADA", "E\u00d7AMPLE<<<<ADA", True),  # an unnamed letter, doubled fillers
        ("EXAMPLE<<ADA", "EXAMPLE<<ANA", False),  # a letter the reads do not hold
        ("EXAMPLE<<ADA", "ADA<<EXAMPLE", False),  # out of order
        # A digit is a letter the detector misnamed (a name holds none): it meets one letter.
        ("OCONNOR<<PETER", "0C0NN0R<<PETER", True),
        ("NGUYEN<<ANNA", "NG0YEN<<A2NA", True),
        ("NGUYEN<<ANNA", "NGUYEN0<<ANNA", False),  # no letter left for the digit there
        ("AB<<CD", "AB0CD", False),  # a digit never meets a filler
    ],
)
def test_holds(text: str, part: str, expected: bool) -> None:
    assert holds(text, part) is expected


def test_a_name_the_detector_read_with_digits_is_agreed() -> None:
    # Measured on a blurred JPEG page: the detector read P<IRLOCONNOR as P<1RL000NN0R. The
    # digits no longer stand for O and I (which refused OCONNOR: one O too many before the Ns).
    line = "P<IRLOCONNOR<<JOHAN<<<<<<<<<<<<<<<<<<<<<<<<<"
    got = agreed([read(line)] * 3, "P<1RL000NN0R<<JOHAN<<<<<<<<<<<<<<<<<<<<<<<<<", least=3)
    assert got is not None and got.text == line
    assert agreed([read(line)] * 3, "P<1RL000NN0R<<PETER<<<<<<<<<<<<", least=3) is None
