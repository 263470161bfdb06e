"""MRZ parsing against the ICAO Doc 9303 golden vectors (../shared/reference) and its rules."""

from __future__ import annotations

from datetime import date

import pytest

from clearance.errors import (
    MrzCheckDigitError,
    MrzFieldError,
    MrzFormatError,
    SpecimenDocument,
    UnknownCountryCode,
    VerificationError,
)
from clearance.identity.mrz import CodeKind, DocumentFormat, Sex, check_digit, parse_mrz

TODAY = date(2026, 6, 1)

# 9303-4 Appendix A (TD3) and 9303-5 Appendix A (TD1): the Utopian specimens.
TD3 = (
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
)
TD1 = (
    "I<UTOD231458907<<<<<<<<<<<<<<<",
    "7408122F1204159UTO<<<<<<<<<<<6",
    "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
)


def parse(lines: tuple[str, ...] | str, **kwargs: bool) -> object:
    return parse_mrz(lines, today=TODAY, **kwargs)


# --- 9303-3 Appendix A: check digit examples -------------------------------------------------


@pytest.mark.parametrize(
    ("data", "digit"),
    [
        ("520727", "3"),  # Example 1, date
        ("AB2134<<<", "5"),  # Example 2, document number
        ("HA672242<6" + "5802254" + "9601086<<<<<<<<<<<<<<0", "8"),  # Example 3, TD3 composite
        ("D231458907<<<<<<<<<<<<<<<" + "3407127" + "9507122" + "<<<<<<<<<<<", "2"),  # Ex. 4
        ("HA672242<6" + "5802254" + "9601086<<<<<<<", "8"),  # Example 5, TD2 composite
    ],
)
def test_check_digit_golden_vectors(data: str, digit: str) -> None:
    assert check_digit(data) == digit


# --- golden documents ------------------------------------------------------------------------


def test_td3_specimen_parses_every_field() -> None:
    result = parse_mrz(TD3, today=TODAY, allow_specimen=True)
    assert result.format is DocumentFormat.TD3
    assert result.document_code == "P"
    assert result.issuing_state.icao == "UTO" and result.issuing_state.alpha2 is None
    assert result.primary_identifier == "ERIKSSON"
    assert result.secondary_identifier == "ANNA MARIA"
    assert result.document_number == "L898902C3"
    assert result.birth_date == date(1974, 8, 12)
    assert result.sex is Sex.FEMALE
    assert result.expiry_date == date(2012, 4, 15)
    assert result.optional_data == ("ZE184226B",)
    assert not result.name_possibly_truncated


def test_td1_specimen_parses_every_field() -> None:
    result = parse_mrz(TD1, today=TODAY, allow_specimen=True)
    assert result.format is DocumentFormat.TD1
    assert result.document_code == "I"
    assert result.document_number == "D23145890"
    assert result.birth_date == date(1974, 8, 12)
    assert result.expiry_date == date(2012, 4, 15)
    assert result.optional_data == ("", "")
    assert (result.primary_identifier, result.secondary_identifier) == ("ERIKSSON", "ANNA MARIA")


def test_specimens_are_refused_as_specimens() -> None:
    for lines in (TD3, TD1):
        with pytest.raises(SpecimenDocument) as caught:
            parse(lines)
        assert caught.value.code == "specimen_document"
        assert isinstance(caught.value, VerificationError) and caught.value.status == 422


def test_reference_extract_with_45_character_lines_is_refused() -> None:
    # The IVANOVA example in our text extract of 9303-4 has 45-character lines: not an MRZ.
    lines = (
        "P<UTOIVANOVA<<ANNA<<<<<<<<<<<<<<<<<<<<<<<<<<<",
        "L898902C36UTO7408122F2504155184226<<<<<<<<<18",
    )
    with pytest.raises(MrzFormatError):
        parse(lines, allow_specimen=True)


# 9303-4 §4.2.3 name examples, each on the golden lower line.
@pytest.mark.parametrize(
    ("upper", "primary", "secondary", "truncated"),
    [
        ("P<UTOHENG<<DEBORAH<MING<LO<<<<<<<<<<<<<<<<<<", "HENG", "DEBORAH MING LO", False),
        ("P<UTOSMITH<JONES<<SUSIE<MARGARET<<<<<<<<<<<<", "SMITH JONES", "SUSIE MARGARET", False),
        ("P<UTOOCONNOR<<ENYA<SIOBHAN<<<<<<<<<<<<<<<<<<", "OCONNOR", "ENYA SIOBHAN", False),
        ("P<UTOVAN<DER<MUELLEN<<MARTIN<<<<<<<<<<<<<<<<", "VAN DER MUELLEN", "MARTIN", False),
        ("P<UTOARKFREITH<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<", "ARKFREITH", "", False),
        ("P<UTOSATRIYA<SUDARPA<<<<<<<<<<<<<<<<<<<<<<<<", "SATRIYA SUDARPA", "", False),
        (
            "P<UTONILAVADHANANANDA<<CHAYAPA<DEJTHAMRONG<K",
            "NILAVADHANANANDA",
            "CHAYAPA DEJTHAMRONG K",
            True,
        ),
        (
            "P<UTOBENNELONG<WOOLOOMOOLOO<WARRANDYTE<W<<DI",
            "BENNELONG WOOLOOMOOLOO WARRANDYTE W",
            "DI",
            True,
        ),
        (
            "P<UTOPAPANDROPOULOUS<<JONATHON<WARREN<TREVOR",
            "PAPANDROPOULOUS",
            "JONATHON WARREN TREVOR",
            True,
        ),
    ],
)
def test_td3_name_examples(upper: str, primary: str, secondary: str, truncated: bool) -> None:
    result = parse_mrz((upper, TD3[1]), today=TODAY, allow_specimen=True)
    assert (result.primary_identifier, result.secondary_identifier) == (primary, secondary)
    assert result.name_possibly_truncated is truncated


@pytest.mark.parametrize(
    "lower",
    [
        "NILAVADHANANANDA<<ARNPOL<PE<CH",
        "BENNELONG<WOOLOOMOOLOO<W<W<<DI",
        "BENNE<WOOLO<WARRA<WARNA<<DIN<P",
        "AL<BASRI<<HUDA<MUHAMMAD<JAWAD<",
        "VILARCHAO<FERNANDEZ<<JOSE<RAMO",
        "SATRIYA<SUDARPA<<<<<<<<<<<<<<<",
    ],
)
def test_td1_name_examples_parse(lower: str) -> None:
    result = parse_mrz((TD1[0], TD1[1], lower), today=TODAY, allow_specimen=True)
    assert result.primary_identifier.replace(" ", "<") == lower.partition("<<")[0]


# --- check digits: every checked field, and the composite ----------------------------------


def _replace(line: str, index: int, char: str) -> str:
    return line[:index] + char + line[index + 1 :]


@pytest.mark.parametrize(
    ("line", "index", "field"),
    [
        (1, 9, "document_number"),
        (1, 19, "birth_date"),
        (1, 27, "expiry_date"),
        (1, 42, "personal_number"),
        (1, 43, "composite"),
    ],
)
def test_td3_each_check_digit_is_verified(line: int, index: int, field: str) -> None:
    lines = list(TD3)
    wrong = str((int(lines[line][index]) + 1) % 10)
    lines[line] = _replace(lines[line], index, wrong)
    with pytest.raises(MrzCheckDigitError) as caught:
        parse(tuple(lines), allow_specimen=True)
    # The composite covers the other check digits, so it fails with them.
    expected = (field,) if field == "composite" else (field, "composite")
    assert caught.value.fields == expected
    assert caught.value.code == "mrz_check_digit"


@pytest.mark.parametrize(
    ("line", "index", "field"),
    [
        (0, 14, "document_number"),
        (1, 6, "birth_date"),
        (1, 14, "expiry_date"),
        (1, 29, "composite"),
    ],
)
def test_td1_each_check_digit_is_verified(line: int, index: int, field: str) -> None:
    lines = list(TD1)
    lines[line] = _replace(lines[line], index, str((int(lines[line][index]) + 1) % 10))
    with pytest.raises(MrzCheckDigitError) as caught:
        parse(tuple(lines), allow_specimen=True)
    assert caught.value.fields == ((field,) if field == "composite" else (field, "composite"))


def test_a_changed_data_character_fails_its_field_and_the_composite() -> None:
    lines = (TD3[0], _replace(TD3[1], 0, "M"))  # L898902C3 -> M898902C3
    with pytest.raises(MrzCheckDigitError) as caught:
        parse(lines, allow_specimen=True)
    assert caught.value.fields == ("document_number", "composite")
    assert "L898902C3" not in caught.value.detail  # errors name fields, never values


def test_personal_number_check_digit_may_be_a_filler_when_the_field_is_empty() -> None:
    # 9303-4 §4.2.2.2 position 43, and 9303-3 Appendix A Example 3's lower line.
    lower = "HA672242<6UTO5802254M9601086<<<<<<<<<<<<<<<8"
    lower_zero = "HA672242<6UTO5802254M9601086<<<<<<<<<<<<<<08"
    upper = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
    for line in (lower_zero, lower):
        result = parse_mrz((upper, line), today=TODAY, allow_specimen=True)
        assert result.document_number == "HA672242"
        assert result.optional_data == ("",)


def test_td2_composite_from_9303_3_example_5() -> None:
    upper = "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<"
    result = parse_mrz(
        (upper, "HA672242<6UTO5802254M9601086<<<<<<<8"), today=TODAY, allow_specimen=True
    )
    assert result.format is DocumentFormat.TD2
    assert result.birth_date == date(1958, 2, 25)
    assert result.expiry_date == date(1996, 1, 8)
    with pytest.raises(MrzCheckDigitError):
        parse((upper, "HA672242<6UTO5802254M9601086<<<<<<<7"), allow_specimen=True)


def test_td1_composite_from_9303_3_example_4() -> None:
    # Example 4 with the nationality printed as UTO (the composite does not cover it).
    lines = ("I<UTOD231458907<<<<<<<<<<<<<<<", "3407127M9507122UTO<<<<<<<<<<<2", TD1[2])
    result = parse_mrz(lines, today=TODAY, allow_specimen=True)
    assert result.birth_date == date(1934, 7, 12)
    assert result.sex is Sex.MALE


# --- long document numbers (9303-5 note j) --------------------------------------------------


def test_td1_long_document_number() -> None:
    number_head, rest = "D23145890", "1234"
    digit = check_digit(number_head + rest)
    upper = f"I<UTO{number_head}<{rest}{digit}<".ljust(30, "<")
    middle_data = upper[5:30] + "7408122" + "1204159" + "<" * 11
    middle = "7408122F1204159UTO" + "<" * 11 + check_digit(middle_data)
    result = parse_mrz((upper, middle, TD1[2]), today=TODAY, allow_specimen=True)
    assert result.document_number == "D231458901234"
    assert result.optional_data == ("", "")
    bad = _replace(upper, 9 + 5, str((int(digit) + 1) % 10))
    with pytest.raises(MrzCheckDigitError) as caught:
        parse((bad, middle, TD1[2]), allow_specimen=True)
    assert "document_number" in caught.value.fields


def test_td1_long_number_without_its_check_digit_is_a_format_error() -> None:
    upper = "I<UTOD23145890<" + "<" * 15
    middle = (
        "7408122F1204159UTO" + "<" * 11 + check_digit(upper[5:30] + "74081221204159" + "<" * 11)
    )
    with pytest.raises(MrzFormatError):
        parse((upper, middle, TD1[2]), allow_specimen=True)


# --- structure and fields --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        TD3[0],
        TD3[0] + "\n" + TD3[1][:-1],
        TD3[0] + "\n" + TD3[1].lower(),
        TD3[0].replace("<", " ", 1) + "\n" + TD3[1],
    ],
)
def test_malformed_text_is_a_format_error(text: str) -> None:
    with pytest.raises(MrzFormatError):
        parse(text, allow_specimen=True)


def test_multiline_string_and_surrounding_blank_lines_are_accepted() -> None:
    text = "\n  " + TD3[0] + "  \n\n" + TD3[1] + "\n"
    assert parse_mrz(text, today=TODAY, allow_specimen=True).lines == TD3


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ((_replace(TD3[0], 0, "V"), TD3[1]), None),  # a visa layout now: still fine
        ((_replace(TD3[0], 0, "I"), TD3[1]), "document code"),
        ((_replace(TD3[0], 7, "1"), TD3[1]), "name"),
        ((TD3[0], _replace(TD3[1], 20, "Q")), "sex"),
    ],
)
def test_field_rules(lines: tuple[str, str], message: str | None) -> None:
    if message is None:
        assert parse_mrz(lines, today=TODAY, allow_specimen=True).format is DocumentFormat.MRV_A
        return
    with pytest.raises(MrzFieldError, match=message):
        parse(lines, allow_specimen=True)


def test_an_impossible_date_with_a_correct_check_digit_is_refused() -> None:
    birth = "741332"
    lower = TD3[1][:13] + birth + check_digit(birth) + TD3[1][20:43]
    lower += check_digit(lower[0:10] + lower[13:20] + lower[21:43])
    with pytest.raises(MrzFieldError, match="calendar"):
        parse((TD3[0], lower), allow_specimen=True)


def test_unknown_birth_date_parts_are_allowed() -> None:
    birth = "74<<<<"
    lower = TD3[1][:13] + birth + check_digit(birth) + TD3[1][20:43]
    lower += check_digit(lower[0:10] + lower[13:20] + lower[21:43])
    assert parse_mrz((TD3[0], lower), today=TODAY, allow_specimen=True).birth_date is None


def test_codes_are_resolved_and_unknown_codes_refused() -> None:
    upper = "P<D<<ERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
    lower = TD3[1].replace("UTO", "XXA")
    result = parse((upper, lower))
    assert result.issuing_state.alpha2 == "DE"  # type: ignore[attr-defined]
    assert result.nationality.kind is CodeKind.NO_NATIONALITY  # type: ignore[attr-defined]
    assert result.nationality_differs_from_issuer  # type: ignore[attr-defined]
    with pytest.raises(UnknownCountryCode, match="nationality"):
        parse((upper, TD3[1].replace("UTO", "YTO")))
    with pytest.raises(UnknownCountryCode, match="issuing_state"):
        parse((upper.replace("D<<", "ZZZ"), lower))


def test_century_of_two_digit_years() -> None:
    birth, expiry = "250101", "851231"
    lower = TD3[1][:13] + birth + check_digit(birth) + "F" + expiry + check_digit(expiry)
    lower += TD3[1][28:43]
    lower += check_digit(lower[0:10] + lower[13:20] + lower[21:43])
    result = parse_mrz((TD3[0], lower), today=TODAY, allow_specimen=True)
    assert result.birth_date == date(2025, 1, 1)  # not after today
    assert result.expiry_date == date(1985, 12, 31)  # within fifty years of today
    later = parse_mrz((TD3[0], lower), today=date(2024, 12, 31), allow_specimen=True)
    assert later.birth_date == date(1925, 1, 1)
