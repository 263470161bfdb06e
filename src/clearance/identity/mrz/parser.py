"""Parse and validate a machine readable zone: ICAO Doc 9303 TD1, TD2, TD3, MRV-A and MRV-B.

Pure: text in, a typed `MrzResult` out, or a precise `MrzError`. Nothing is repaired here — the
OCR edge (`document/ocr.py`) may only normalise layout before calling `parse_mrz`, and whatever it
hands over must pass every check digit or is refused with the reason.

Layouts: TD3 and MRV-A 9303-4 §4.2.2 / 9303-7 (2 x 44), TD2 and MRV-B 9303-6 / 9303-7 (2 x 36),
TD1 9303-5 §4.2.2 (3 x 30). Check digits 9303-3 §4.9, positions per form factor (9303-4 §4.2.4,
9303-5 §4.2.4). Errors name the failing field, never its value (personal data stays out of logs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from clearance.errors import (
    MrzCheckDigitError,
    MrzFieldError,
    MrzFormatError,
    SpecimenDocument,
)
from clearance.identity.mrz import codes
from clearance.identity.mrz.checkdigit import check_digit
from clearance.identity.mrz.codes import CodeKind, IcaoCode

_CHARSET = re.compile(r"[A-Z0-9<]+")  # 9303-3 §4.4 Figure 4: the OCR-B subset


class DocumentFormat(StrEnum):
    TD1 = "td1"
    TD2 = "td2"
    TD3 = "td3"
    MRV_A = "mrv_a"
    MRV_B = "mrv_b"


class Sex(StrEnum):
    FEMALE = "F"
    MALE = "M"
    UNSPECIFIED = "X"  # `<` in the MRZ (9303-4 note p), shown as X in the VIZ


@dataclass(frozen=True, slots=True)
class MrzResult:
    format: DocumentFormat
    document_code: str  # "P", "PO", "I", "ID", "AC", "V" ... with fillers removed
    issuing_state: IcaoCode
    nationality: IcaoCode
    primary_identifier: str  # surname components, space separated
    secondary_identifier: str  # given name components, space separated ("" when none)
    name_possibly_truncated: bool  # the last name position is a letter (9303-4 §4.2.3)
    document_number: str  # long numbers (9303-5 note j) joined in full
    birth_date: date | None  # None when all or part is unknown (9303-3 §4.8)
    sex: Sex
    expiry_date: date
    optional_data: tuple[str, ...]  # fillers removed; TD1 has two fields (upper, middle)
    lines: tuple[str, ...]

    @property
    def nationality_differs_from_issuer(self) -> bool:
        """Nationality carries no check digit: a mismatch with the issuer deserves a look."""
        return self.nationality.icao != self.issuing_state.icao


@dataclass(frozen=True, slots=True)
class _Lower:
    """The fields TD2, TD3 and MRV share on their lower line (9303-4 §4.2.2.2)."""

    number: str
    number_check: str
    nationality: str
    birth: str
    birth_check: str
    sex: str
    expiry: str
    expiry_check: str
    optional: str


def split_lines(text: str | Iterable[str]) -> tuple[str, ...]:
    raw = text.splitlines() if isinstance(text, str) else list(text)
    return tuple(line.strip() for line in raw if line.strip())


def detect_format(lines: tuple[str, ...]) -> DocumentFormat:
    lengths = tuple(len(line) for line in lines)
    if lengths == (30, 30, 30):
        return DocumentFormat.TD1
    if lengths == (36, 36):
        return DocumentFormat.MRV_B if lines[0].startswith("V") else DocumentFormat.TD2
    if lengths == (44, 44):
        return DocumentFormat.MRV_A if lines[0].startswith("V") else DocumentFormat.TD3
    raise MrzFormatError("an MRZ has 3 lines of 30, or 2 lines of 36 or 44 characters")


def parse_mrz(text: str | Iterable[str], *, today: date, allow_specimen: bool = False) -> MrzResult:
    """Parse and validate; `today` fixes the century of two-digit years (9303-3 §4.8).

    Specimens (code UTO, 9303-3 §5 Part G) are refused unless `allow_specimen` (tests only).
    """
    lines = split_lines(text)
    fmt = detect_format(lines)
    if not all(_CHARSET.fullmatch(line) for line in lines):
        raise MrzFormatError("the MRZ holds characters outside A-Z, 0-9 and <")
    result = (
        _parse_td1(lines, today) if fmt is DocumentFormat.TD1 else _parse_two(fmt, lines, today)
    )
    specimen = CodeKind.SPECIMEN
    if specimen in (result.issuing_state.kind, result.nationality.kind) and not allow_specimen:
        raise SpecimenDocument("this is a specimen document (Utopia), not a real person's")
    return result


def _document_code(fmt: DocumentFormat, field: str) -> str:
    allowed = {
        DocumentFormat.TD1: "ACI",  # 9303-5 note k
        DocumentFormat.TD2: "ACI",  # 9303-6
        DocumentFormat.TD3: "P",  # 9303-4 §4.2.2.1
        DocumentFormat.MRV_A: "V",  # 9303-7
        DocumentFormat.MRV_B: "V",
    }[fmt]
    first, second = field[0], field[1]
    # The second character is at the issuer's discretion: real US permanent resident cards
    # print "C1" (9303-5 note k only excludes V, and AI), so digits are allowed too.
    if first not in allowed or not (second == "<" or second.isalnum()):
        raise MrzFieldError("the document code is not valid for this document format")
    # 9303-5 note k: the second letter is never V, and AI is not used (AC is the crew card).
    if first in "ACI" and (second == "V" or field == "AI"):
        raise MrzFieldError("the document code is not valid for this document format")
    return field.rstrip("<")


def _long_number(number: str, check: str, optional: str) -> tuple[str, str, str, str]:
    """9303-5 note j (TD1) and 9303-6 (TD2): a number over 9 characters has `<` in place of
    its check digit and continues at the start of the optional data, followed by its check
    digit and a filler. Returns (full number, data the check digit covers, check, optional).
    """
    if check != "<" or number.endswith("<"):
        return number, number, check, optional
    end = optional.find("<")
    if end < 2:  # at least one more character of the number, then its check digit
        raise MrzFormatError("a long document number is not followed by its check digit")
    rest = optional[: end - 1]
    return number + rest, number + rest, optional[end - 1], optional[end + 1 :]


def _verify_checks(pairs: Iterable[tuple[str, str, str]]) -> None:
    """Every (field name, data, check digit) must match; report all failing names at once."""
    failed = tuple(name for name, data, digit in pairs if check_digit(data) != digit)
    if failed:
        raise MrzCheckDigitError(
            "check digit mismatch: " + ", ".join(failed) + " (ICAO 9303-3 §4.9)", failed
        )


def _parse_date(raw: str, field: str, *, today: date, is_birth: bool) -> date | None:
    if is_birth and "<" in raw:
        if not re.fullmatch(r"[0-9<]{6}", raw):
            raise MrzFieldError(f"the {field} is not a YYMMDD date")
        return None  # 9303-3 §4.8: all or part unknown, written with fillers
    if not raw.isdigit():
        raise MrzFieldError(f"the {field} is not a YYMMDD date")
    yy, month, day = int(raw[:2]), int(raw[2:4]), int(raw[4:])
    # 9303-3 §4.8 gives two digits only: a birth date is the latest not after today; an
    # expiry date is the one within fifty years of today.
    year = 2000 + yy
    try:
        if is_birth:
            value = date(year, month, day)
            return value if value <= today else date(year - 100, month, day)
        if year > today.year + 49:
            year -= 100
        return date(year, month, day)
    except ValueError:
        raise MrzFieldError(f"the {field} is not a calendar date") from None


def _sex(char: str) -> Sex:
    if char == "F":
        return Sex.FEMALE
    if char == "M":
        return Sex.MALE
    if char in "<X":
        return Sex.UNSPECIFIED
    raise MrzFieldError("the sex field is not F, M or <")


def _names(field: str) -> tuple[str, str, bool]:
    """9303-3 §4.6: primary << secondary, components joined by single fillers."""
    if not re.fullmatch(r"[A-Z<]+", field) or field.startswith("<"):
        raise MrzFieldError("the name field holds no name or characters other than A-Z and <")
    primary, _, secondary = field.partition("<<")
    secondary = secondary.rstrip("<")
    if "<<" in secondary or secondary.startswith("<"):
        raise MrzFieldError("the name field has text after its trailing fillers")
    truncated = field[-1] != "<"
    return primary.replace("<", " "), secondary.replace("<", " "), truncated


def _number(value: str) -> str:
    number = value.rstrip("<")
    if not number:
        raise MrzFieldError("the document number is empty")
    return number


def _optional(value: str) -> str:
    return value.rstrip("<")


def _parse_td1(lines: tuple[str, ...], today: date) -> MrzResult:
    """9303-5 §4.2.2 and the check digit table of §4.2.4."""
    upper, middle, lower = lines
    code = _document_code(DocumentFormat.TD1, upper[0:2])
    number, number_data, number_check, optional1 = _long_number(
        upper[5:14], upper[14], upper[15:30]
    )
    composite = upper[5:30] + middle[0:7] + middle[8:15] + middle[18:29]
    _verify_checks(
        (
            ("document_number", number_data, number_check),
            ("birth_date", middle[0:6], middle[6]),
            ("expiry_date", middle[8:14], middle[14]),
            ("composite", composite, middle[29]),
        )
    )
    primary, secondary, truncated = _names(lower)
    return MrzResult(
        format=DocumentFormat.TD1,
        document_code=code,
        issuing_state=codes.lookup(upper[2:5], role="issuing_state"),
        nationality=codes.lookup(middle[15:18], role="nationality"),
        primary_identifier=primary,
        secondary_identifier=secondary,
        name_possibly_truncated=truncated,
        document_number=_number(number),
        birth_date=_parse_date(middle[0:6], "birth date", today=today, is_birth=True),
        sex=_sex(middle[7]),
        expiry_date=_expiry(middle[8:14], today),
        optional_data=(_optional(optional1), _optional(middle[18:29])),
        lines=lines,
    )


def _expiry(raw: str, today: date) -> date:
    value = _parse_date(raw, "expiry date", today=today, is_birth=False)
    if value is None:  # unreachable: only a birth date may be unknown
        raise MrzFieldError("the expiry date is unknown")
    return value


def _lower_fields(line: str, optional_end: int) -> _Lower:
    return _Lower(
        number=line[0:9],
        number_check=line[9],
        nationality=line[10:13],
        birth=line[13:19],
        birth_check=line[19],
        sex=line[20],
        expiry=line[21:27],
        expiry_check=line[27],
        optional=line[28:optional_end],
    )


def _parse_two(fmt: DocumentFormat, lines: tuple[str, ...], today: date) -> MrzResult:
    """TD3 (9303-4 §4.2.2), TD2 (9303-6), MRV-A and MRV-B (9303-7): two lines."""
    upper, lower = lines
    code = _document_code(fmt, upper[0:2])
    # Where the optional data ends: TD3 has its own check digit then the composite, TD2 only
    # the composite, visas neither.
    end = {
        DocumentFormat.TD3: 42,
        DocumentFormat.TD2: 35,
        DocumentFormat.MRV_A: 44,
        DocumentFormat.MRV_B: 36,
    }[fmt]
    f = _lower_fields(lower, end)
    number, number_data, number_check, optional = f.number, f.number, f.number_check, f.optional
    if fmt is DocumentFormat.TD2:
        number, number_data, number_check, optional = _long_number(
            f.number, f.number_check, f.optional
        )
    checks = [
        ("document_number", number_data, number_check),
        ("birth_date", f.birth, f.birth_check),
        ("expiry_date", f.expiry, f.expiry_check),
    ]
    if fmt is DocumentFormat.TD3:
        # 9303-4 §4.2.2.2 position 43: `<` (or 0) when the personal number is all fillers.
        if not (lower[42] == "<" and f.optional == "<" * 14):
            checks.append(("personal_number", f.optional, lower[42]))
        checks.append(("composite", lower[0:10] + lower[13:20] + lower[21:43], lower[43]))
    elif fmt is DocumentFormat.TD2:
        checks.append(("composite", lower[0:10] + lower[13:20] + lower[21:35], lower[35]))
    _verify_checks(checks)
    primary, secondary, truncated = _names(upper[5:])
    return MrzResult(
        format=fmt,
        document_code=code,
        issuing_state=codes.lookup(upper[2:5], role="issuing_state"),
        nationality=codes.lookup(f.nationality, role="nationality"),
        primary_identifier=primary,
        secondary_identifier=secondary,
        name_possibly_truncated=truncated,
        document_number=_number(number),
        birth_date=_parse_date(f.birth, "birth date", today=today, is_birth=True),
        sex=_sex(f.sex),
        expiry_date=_expiry(f.expiry, today),
        optional_data=(_optional(optional),),
        lines=lines,
    )
