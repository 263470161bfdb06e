"""Property: a single-character substitution in a checked MRZ field is detected.

ICAO 9303-3 §4.9 weights 7, 3, 1 modulo 10, so a substitution changes a check sum unless the
new character has the same value modulo 10 (0 = < = A = K = U, 1 = B = L = V, ...). Every such
change must be refused; the others are the scheme's known blind spot, asserted as such so the
limitation stays visible (it is why the OCR edge never guesses a character).
"""

from __future__ import annotations

import string
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from clearance.errors import MrzError
from clearance.identity.mrz import DocumentData, DocumentFormat, Sex, char_value, compose, parse_mrz

TODAY = date(2026, 6, 1)
ALNUM = string.ascii_uppercase + string.digits
MRZ_CHARS = ALNUM + "<"

# (line, first column, last column) covered by some check digit, check digits included:
# 9303-4 §4.2.4 (TD3), 9303-5 §4.2.4 (TD1), 9303-6 (TD2), 9303-7 (visas: no composite).
CHECKED = {
    DocumentFormat.TD3: ((1, 0, 9), (1, 13, 19), (1, 21, 43)),
    DocumentFormat.TD2: ((1, 0, 9), (1, 13, 19), (1, 21, 35)),
    DocumentFormat.MRV_A: ((1, 0, 9), (1, 13, 19), (1, 21, 27)),
    DocumentFormat.MRV_B: ((1, 0, 9), (1, 13, 19), (1, 21, 27)),
    DocumentFormat.TD1: ((0, 5, 29), (1, 0, 6), (1, 8, 14), (1, 18, 29)),
}
CODE = {
    DocumentFormat.TD3: "P",
    DocumentFormat.TD2: "I",
    DocumentFormat.MRV_A: "V",
    DocumentFormat.MRV_B: "V",
    DocumentFormat.TD1: "ID",
}


@st.composite
def documents(draw: st.DrawFn) -> DocumentData:
    fmt = draw(st.sampled_from(list(DocumentFormat)))
    long_ok = fmt in (DocumentFormat.TD1, DocumentFormat.TD2)
    number = draw(st.text(ALNUM, min_size=1, max_size=12 if long_ok else 9))
    optional_max = {
        DocumentFormat.TD3: 14,
        DocumentFormat.TD2: 7,
        DocumentFormat.MRV_A: 16,
        DocumentFormat.MRV_B: 8,
        DocumentFormat.TD1: 15,
    }[fmt]
    if len(number) > 9:
        optional_max -= len(number) - 9 + 2
    birth = draw(st.dates(date(1930, 1, 1), TODAY))
    return DocumentData(
        format=fmt,
        document_code=CODE[fmt],
        issuing_state=draw(st.sampled_from(["D", "GBR", "USA", "FRA", "UNO", "XXA"])),
        nationality=draw(st.sampled_from(["D", "GBR", "USA", "SWE", "XXB", "GBN"])),
        primary_identifier=draw(st.text(string.ascii_uppercase, min_size=1, max_size=12)),
        secondary_identifier=draw(st.text(string.ascii_uppercase, max_size=10)),
        document_number=number,
        birth_date=birth,
        sex=draw(st.sampled_from(list(Sex))),
        expiry_date=TODAY + timedelta(days=draw(st.integers(-3000, 3650))),
        optional_data=draw(st.text(ALNUM, max_size=optional_max)),
        optional_data_2=draw(st.text(ALNUM, max_size=11)),
    )


@settings(max_examples=300, deadline=None)
@given(data=st.data(), document=documents())
def test_single_substitution_in_a_checked_field_is_detected(
    data: st.DataObject, document: DocumentData
) -> None:
    lines = list(compose(document))
    parse_mrz(lines, today=TODAY)  # the untouched document is valid
    line, first, last = data.draw(st.sampled_from(CHECKED[document.format]))
    column = data.draw(st.integers(first, last))
    old = lines[line][column]
    new = data.draw(st.sampled_from(MRZ_CHARS).filter(lambda c: c != old))
    lines[line] = lines[line][:column] + new + lines[line][column + 1 :]
    same_value = (char_value(new) - char_value(old)) % 10 == 0
    try:
        parse_mrz(lines, today=TODAY)
    except MrzError:
        return
    assert same_value, f"{old!r}->{new!r} at line {line} column {column} went undetected"


def test_the_blind_spot_is_real() -> None:
    """`<` and `K` weigh the same: a misread filler in a document number is not detected."""
    document = DocumentData(
        format=DocumentFormat.TD3,
        document_code="P",
        issuing_state="SWE",
        nationality="SWE",
        primary_identifier="LINDQVIST",
        secondary_identifier="ANNA",
        document_number="AB12345",
        birth_date=date(1980, 1, 2),
        sex=Sex.FEMALE,
        expiry_date=date(2030, 1, 2),
    )
    upper, lower = compose(document)
    misread = lower[:7] + "K" + lower[8:]
    assert parse_mrz((upper, misread), today=TODAY).document_number == "AB12345K"
