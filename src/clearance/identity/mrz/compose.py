"""Write an MRZ from data: the inverse of `mrz.parse_mrz`, for synthetic test documents.

Used to build the synthetic photo set, property tests and demo documents. Layouts and check
digit positions are those parsed in `parser.py` (ICAO 9303-4 §4.2.2, 9303-5 §4.2.2, 9303-6,
9303-7); names follow 9303-3 §4.6 with plain right truncation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from clearance.identity.mrz.checkdigit import check_digit
from clearance.identity.mrz.parser import DocumentFormat, Sex

_WIDTH = {
    DocumentFormat.TD1: 30,
    DocumentFormat.TD2: 36,
    DocumentFormat.TD3: 44,
    DocumentFormat.MRV_A: 44,
    DocumentFormat.MRV_B: 36,
}


@dataclass(frozen=True, slots=True)
class DocumentData:
    format: DocumentFormat
    document_code: str  # "P", "I", "ID", "V" ...
    issuing_state: str  # ICAO code as printed without fillers: "D", "GBR"
    nationality: str
    primary_identifier: str  # "VAN DER MUELLEN"
    secondary_identifier: str  # "MARTIN"
    document_number: str  # may exceed 9 characters on TD1 / TD2
    birth_date: date | None
    sex: Sex
    expiry_date: date
    optional_data: str = ""
    optional_data_2: str = ""  # TD1 middle line only


def _fit(value: str, width: int) -> str:
    if len(value) > width:
        raise ValueError(f"{value!r} does not fit in {width} MRZ positions")
    return value + "<" * (width - len(value))


def _component(text: str) -> str:
    # 9303-3 §4.6: apostrophes dropped, hyphens / commas / spaces become one filler.
    text = re.sub("['\u2019.]", "", text.upper())
    return "<".join(part for part in re.split(r"[\s,\-]+", text) if part)


def name_field(primary: str, secondary: str, width: int) -> str:
    name = _component(primary)
    if secondary:
        name += "<<" + _component(secondary)
    return _fit(name[:width], width)


def _yymmdd(value: date | None) -> str:
    return "<<<<<<" if value is None else value.strftime("%y%m%d")


def compose(data: DocumentData) -> tuple[str, ...]:
    width = _WIDTH[data.format]
    code = _fit(data.document_code, 2)
    issuer = _fit(data.issuing_state, 3)
    if data.format is DocumentFormat.TD1:
        return _td1(data, code, issuer)
    upper = (
        code + issuer + name_field(data.primary_identifier, data.secondary_identifier, width - 5)
    )
    birth, expiry = _yymmdd(data.birth_date), _yymmdd(data.expiry_date)
    optional_width = {
        DocumentFormat.TD3: 14,
        DocumentFormat.TD2: 7,
        DocumentFormat.MRV_A: 16,
        DocumentFormat.MRV_B: 8,
    }[data.format]
    number_field, optional = _number_fields(data.document_number, data.optional_data)
    lower = (
        number_field
        + _fit(data.nationality, 3)
        + birth
        + check_digit(birth)
        + _sex(data.sex)
        + expiry
        + check_digit(expiry)
        + _fit(optional, optional_width)
    )
    if data.format is DocumentFormat.TD3:
        lower += check_digit(lower[28:42])
    if data.format in (DocumentFormat.TD3, DocumentFormat.TD2):
        lower += check_digit(lower[0:10] + lower[13:20] + lower[21:])
    return upper, lower


def _sex(sex: Sex) -> str:
    return "<" if sex is Sex.UNSPECIFIED else sex.value


def _number_fields(number: str, optional: str) -> tuple[str, str]:
    """(number + check digit, optional data); long numbers per 9303-5 note j."""
    if len(number) <= 9:
        field = _fit(number, 9)
        return field + check_digit(field), optional
    head, rest = number[:9], number[9:]
    return head + "<", rest + check_digit(head + rest) + "<" + optional


def _td1(data: DocumentData, code: str, issuer: str) -> tuple[str, ...]:
    number_field, optional = _number_fields(data.document_number, data.optional_data)
    upper = code + issuer + number_field + _fit(optional, 15)
    birth, expiry = _yymmdd(data.birth_date), _yymmdd(data.expiry_date)
    middle = (
        birth
        + check_digit(birth)
        + _sex(data.sex)
        + expiry
        + check_digit(expiry)
        + _fit(data.nationality, 3)
        + _fit(data.optional_data_2, 11)
    )
    middle += check_digit(upper[5:30] + middle[0:7] + middle[8:15] + middle[18:29])
    lower = name_field(data.primary_identifier, data.secondary_identifier, 30)
    return upper, middle, lower
