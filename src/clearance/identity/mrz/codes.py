"""The ICAO 9303 three-letter code table, mapped to ISO 3166-1 alpha-2 where one exists.

ICAO Doc 9303-3 §5: the MRZ uses ISO 3166-1 alpha-3 codes (Part A), plus codes that are not in
ISO 3166-1 — Germany's `D`, the British nationality classes, Kosovo, the European Union, United
Nations documents, other issuing organisations, persons without a defined nationality, deprecated
codes and the specimen code `UTO` (Parts A-H). Those extensions are listed here by hand; the ISO
part comes from pycountry's offline data.

Only a real ISO 3166-1 alpha-2 code is ever given as `alpha2`: an organisation, a stateless
person, a British class other than citizen, Kosovo or a specimen has none, and the decision
service must treat that as "no nationality established from this code" rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pycountry

from clearance.errors import UnknownCountryCode


class CodeKind(StrEnum):
    STATE = "state"  # an ISO 3166-1 country (or Germany's `D`)
    BRITISH_CLASS = "british_class"  # 9303-3 §5 Part A: GBD, GBN, GBO, GBP, GBS
    TERRITORY = "territory"  # operationally used, not in ISO 3166-1 (Kosovo, RKS)
    ORGANISATION = "organisation"  # EU, UN and other issuing organisations (Parts B-D, H)
    NO_NATIONALITY = "no_nationality"  # stateless, refugee, unspecified (Part E)
    DEPRECATED = "deprecated"  # withdrawn from ISO 3166 (Part F)
    SPECIMEN = "specimen"  # Utopia, for specimen documents only (Part G)


@dataclass(frozen=True, slots=True)
class IcaoCode:
    icao: str  # as printed in the MRZ, fillers removed: "D", "GBR", "XXA"
    name: str
    kind: CodeKind
    alpha2: str | None  # ISO 3166-1 alpha-2, only where one exists


def _extensions() -> tuple[IcaoCode, ...]:
    k = CodeKind
    return (
        # Part A — codes not in ISO 3166-1 used for nationality / issuing State
        IcaoCode("D", "Germany", k.STATE, "DE"),
        IcaoCode("GBD", "British Overseas Territories Citizen", k.BRITISH_CLASS, None),
        IcaoCode("GBN", "British National (Overseas)", k.BRITISH_CLASS, None),
        IcaoCode("GBO", "British Overseas Citizen", k.BRITISH_CLASS, None),
        IcaoCode("GBP", "British Protected Person", k.BRITISH_CLASS, None),
        IcaoCode("GBS", "British Subject", k.BRITISH_CLASS, None),
        IcaoCode("RKS", "Republic of Kosovo", k.TERRITORY, None),
        # Part B — other codes reserved by ISO 3166/MA
        IcaoCode("EUE", "European Union", k.ORGANISATION, None),
        # Part C — United Nations travel documents
        IcaoCode(
            "UNO", "United Nations Organization or one of its officials", k.ORGANISATION, None
        ),
        IcaoCode(
            "UNA", "United Nations specialized agency or one of its officials", k.ORGANISATION, None
        ),
        IcaoCode("UNK", "Resident of Kosovo, document issued by UNMIK", k.ORGANISATION, None),
        # Part D — other issuing authorities
        IcaoCode("XBA", "African Development Bank", k.ORGANISATION, None),
        IcaoCode("XIM", "African Export-Import Bank", k.ORGANISATION, None),
        IcaoCode("XCC", "Caribbean Community (CARICOM)", k.ORGANISATION, None),
        IcaoCode("XCE", "Council of Europe", k.ORGANISATION, None),
        IcaoCode("XCO", "Common Market for Eastern and Southern Africa", k.ORGANISATION, None),
        IcaoCode("XEC", "Economic Community of West African States", k.ORGANISATION, None),
        IcaoCode("XPO", "International Criminal Police Organization", k.ORGANISATION, None),
        IcaoCode("XES", "Organization of Eastern Caribbean States", k.ORGANISATION, None),
        IcaoCode("XMP", "Parliamentary Assembly of the Mediterranean", k.ORGANISATION, None),
        IcaoCode("XOM", "Sovereign Military Order of Malta", k.ORGANISATION, None),
        IcaoCode("XDC", "Southern African Development Community", k.ORGANISATION, None),
        # Part E — persons without a defined nationality
        IcaoCode("XXA", "Stateless person (1954 Convention)", k.NO_NATIONALITY, None),
        IcaoCode("XXB", "Refugee (1951 Convention)", k.NO_NATIONALITY, None),
        IcaoCode("XXC", "Refugee, other", k.NO_NATIONALITY, None),
        IcaoCode("XXX", "Person of unspecified nationality", k.NO_NATIONALITY, None),
        # Part F — deprecated in ISO 3166, kept for backward compatibility
        IcaoCode("ANT", "Netherlands Antilles", k.DEPRECATED, None),
        IcaoCode("NTZ", "Neutral Zone", k.DEPRECATED, None),
        # Part G — specimens
        IcaoCode("UTO", "Utopia (specimen)", k.SPECIMEN, None),
        # Part H — used by ICAO only
        IcaoCode("IAO", "International Civil Aviation Organization", k.ORGANISATION, None),
    )


def _table() -> dict[str, IcaoCode]:
    table = {
        c.alpha_3: IcaoCode(c.alpha_3, c.name, CodeKind.STATE, c.alpha_2)
        for c in pycountry.countries
    }
    for code in _extensions():
        table[code.icao] = code
    return table


CODES: dict[str, IcaoCode] = _table()


def lookup(field: str, *, role: str) -> IcaoCode:
    """The code in a three-character MRZ field (`D<<`, `GBR`), or UnknownCountryCode.

    `role` names the field ("issuing_state", "nationality") in the error, never its value.
    """
    code = field.rstrip("<")
    if len(field) != 3 or "<" in code or code not in CODES:
        raise UnknownCountryCode(f"the {role} code is not in the ICAO 9303-3 code table")
    return CODES[code]
