"""Loaders against slices of the real list files (tests/fixtures/lists)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearance.errors import InvalidInput
from clearance.screening.loaders import load, ofac
from clearance.screening.models import BirthDate, EntityType, ListFormat

LISTS = Path(__file__).resolve().parents[1] / "fixtures" / "lists"


def _files(*names: str) -> list[tuple[str, bytes]]:
    return [(n, (LISTS / n).read_bytes()) for n in names]


def test_ofac_quirks_blanks_eof_byte_and_remarks() -> None:
    report = load(ListFormat.OFAC_SDN, _files("sdn.csv", "alt.csv", "add.csv"))
    by_id = {e.entry_id: e for e in report.entries}
    assert len(report.entries) == 18
    putin = by_id["35096"]
    assert putin.entity_type is EntityType.PERSON
    assert putin.primary_name == "PUTIN, Vladimir Vladimirovich"
    assert "PUTIN, Vladimir" in putin.names  # from alt.csv
    assert putin.birth_dates == (BirthDate(1952, 1952, 10, 7),)
    assert putin.nationalities == ("RU",)
    cuba_bank = by_id["306"]
    assert cuba_bank.entity_type is EntityType.ENTITY
    assert cuba_bank.weak_names == ("BNC",)  # "a.k.a. 'BNC'" in the remarks
    assert by_id["4243"].entity_type is EntityType.VESSEL
    assert by_id["4243"].weak_names == ("ANA I", "SAND SWAN")
    # `-0-` is a blank, never a value; the trailing 0x1A byte is not a row.
    assert all("-0-" not in n for e in report.entries for n in e.names)
    assert report.skipped == {
        "alias rows for entries not in sdn.csv": 2,
        "address rows for entries not in sdn.csv": 2,
    }


def test_ofac_birth_date_forms() -> None:
    row = ["1", "X, Y", "individual", "P", *[""] * 8]
    row[11] = "DOB 1946; alt. DOB circa 1950; alt. DOB 1959 to 1962; DOB Dec 1960; nationality Iran"
    data = ",".join(f'"{v}"' if v else "-0- " for v in row).encode()
    (entry,) = ofac.load([("sdn.csv", data)]).entries
    assert entry.birth_dates == (
        BirthDate(1946, 1946),
        BirthDate(1950, 1950),
        BirthDate(1959, 1962),
        BirthDate(1960, 1960, 12),
    )
    assert entry.nationalities == ("IR",)


def test_ofac_needs_the_sdn_file() -> None:
    with pytest.raises(InvalidInput, match=r"needs sdn\.csv"):
        load(ListFormat.OFAC_SDN, _files("alt.csv"))
    with pytest.raises(InvalidInput, match="columns"):
        load(ListFormat.OFAC_SDN, [("x.csv", b"a,b\n")])


def test_csl_keeps_entity_list_licence_terms_and_skips_repeated_header() -> None:
    report = load(ListFormat.CSL, _files("csl.csv"))
    assert report.skipped == {"repeated header rows": 1}
    assert len(report.entries) == 8
    el = next(e for e in report.entries if e.primary_name == "Abdul Satar Ghoura")
    assert el.license_policy == "Presumption of denial."
    assert "744.11" in el.license_requirement
    assert el.entity_type is None  # the CSL leaves the type blank
    haniya = next(e for e in report.entries if e.entry_id == "9639")
    assert haniya.names == ("Ismail Abdul Salah HANIYA", "Ismail HANIYA", "Ismaeel HANIYYA")
    assert haniya.birth_dates == (BirthDate(1962, 1962),)
    fse = next(e for e in report.entries if e.entry_id == "26182")
    assert fse.nationalities == ("TR",)
    assert fse.birth_dates == (BirthDate(1980, 1980, 2, 8),)


def test_un_xml_original_script_low_aliases_and_dates() -> None:
    report = load(ListFormat.UN_XML, _files("un.xml"))
    by_id = {e.entry_id: e for e in report.entries}
    saddam = by_id["IQi.001"]
    assert saddam.names[:2] == ("SADDAM HUSSEIN AL-TIKRITI", "صدام حسين التكريتي")
    assert saddam.birth_dates == (BirthDate(1937, 1937, 4, 28),)
    assert saddam.nationalities == ("IQ",)
    assert "Abu Ali" in saddam.weak_names  # UN "Low" quality alias
    assert by_id["CDe.001"].entity_type is EntityType.ENTITY
    assert by_id["CDe.001"].nationalities == ("CD",)


def test_un_xml_rejects_other_documents() -> None:
    with pytest.raises(InvalidInput):
        load(ListFormat.UN_XML, [("x.xml", b"<html/>")])
    with pytest.raises(InvalidInput):
        load(ListFormat.UN_XML, [("x.xml", b"not xml")])


def test_ftm_targets_only() -> None:
    report = load(ListFormat.FTM, _files("ftm.jsonl"))
    assert [e.entry_id for e in report.entries] == ["NK-putin", "NK-melli", "NK-vessel"]
    assert report.skipped == {
        "Sanction records": 1,
        "non-target entities": 1,
        "entities without a name": 1,
    }
    putin = report.entries[0]
    assert putin.weak_names == ("VVP",)
    assert putin.nationalities == ("RU",)
    assert report.entries[1].nationalities == ("IR",)
    assert report.entries[2].names == ("EBANO", "ANA I", "SAND SWAN")


def test_ftm_bad_line() -> None:
    with pytest.raises(InvalidInput, match="line 1"):
        load(ListFormat.FTM, [("x", b"{nope\n")])
