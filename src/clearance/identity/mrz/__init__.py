"""The machine readable zone, pure: parse and validate (`parser.py`), check digits
(`checkdigit.py`), the ICAO 9303 code table (`codes.py`), and writing an MRZ from data for
synthetic documents (`compose.py`). Text in, typed results out; no I/O, nothing repaired here
(reading an MRZ from a photo, and its repair, is `identity.document`)."""

from clearance.identity.mrz.checkdigit import char_value, check_digit
from clearance.identity.mrz.codes import CODES, CodeKind, IcaoCode, lookup
from clearance.identity.mrz.compose import DocumentData, compose
from clearance.identity.mrz.parser import DocumentFormat, MrzResult, Sex, parse_mrz

__all__ = [
    "CODES",
    "CodeKind",
    "DocumentData",
    "DocumentFormat",
    "IcaoCode",
    "MrzResult",
    "Sex",
    "char_value",
    "check_digit",
    "compose",
    "lookup",
    "parse_mrz",
]
