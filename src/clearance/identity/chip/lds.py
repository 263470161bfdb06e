"""The Logical Data Structure files a phone app reads from an eMRTD chip, parsed under limits.

- EF.SOD (ICAO 9303-10 §4.6.2): application tag `77` around a CMS ContentInfo (RFC 5652 §3)
  holding SignedData (§5) whose encapsulated content is the LDSSecurityObject (9303-10 §4.6.2.2,
  eContentType id-icao-mrtd-security-ldsSecurityObject): the digest algorithm and the hash of
  every data group.
- EF.DG1 (9303-10 §4.7.1): tag `61` around `5F1F`, the MRZ as it is printed (TD1 90, TD2 72,
  TD3 88 characters).
- EF.DG2 (9303-10 §4.7.2): tag `75`, the Biometric Information Group Template `7F61`, its first
  Biometric Information Template `7F60`, whose biometric data block `5F2E` is an ISO/IEC
  19794-5 facial record: the portrait (`portrait.py`).

Each file is bounded in size and walked by `der.walk` (every length inside its parent, depth and
element count bounded) before asn1crypto reads it; whatever asn1crypto then still refuses is a
`ChipFormatError`, never its own exception.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from asn1crypto import algos, cms, core

from clearance.errors import ChipFormatError
from clearance.identity.chip import der

MAX_DG1_BYTES = 1024  # a TD1 DG1 is 98 bytes
MAX_DG2_BYTES = 512 * 1024  # portraits are ~15-30 KB (9303-9 recommends JPEG/JPEG2000 ~ 15 KB)
MAX_SOD_BYTES = 64 * 1024  # a SOD with its DS certificate is 2-5 KB

# ICAO 9303-10 §4.6.2.2 / 9303-12 §8: the object identifiers of the encapsulated contents.
LDS_SECURITY_OBJECT = "2.23.136.1.1.1"
CSCA_MASTER_LIST = "2.23.136.1.1.2"

_MRZ_LENGTHS = {90: 30, 72: 36, 88: 44}  # DG1 MRZ length -> line length (TD1, TD2, TD3)

T = TypeVar("T")


class DataGroupHash(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("data_group_number", core.Integer),
        ("data_group_hash_value", core.OctetString),
    ]


class DataGroupHashValues(core.SequenceOf):  # type: ignore[misc]
    _child_spec = DataGroupHash


class LdsVersionInfo(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("lds_version", core.PrintableString),
        ("unicode_version", core.PrintableString),
    ]


class LdsSecurityObject(core.Sequence):  # type: ignore[misc]
    """9303-10 §4.6.2.2: version 0 (LDS 1.7) or 1 (LDS 1.8, with ldsVersionInfo)."""

    _fields = [  # noqa: RUF012
        ("version", core.Integer),
        ("hash_algorithm", algos.DigestAlgorithm),
        ("data_group_hash_values", DataGroupHashValues),
        ("lds_version_info", LdsVersionInfo, {"optional": True}),
    ]


def asn1(what: str, read: Callable[[], T]) -> T:
    """Run an asn1crypto read; its refusals (ValueError, TypeError ...) become ours."""
    try:
        return read()
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as exc:
        raise ChipFormatError(f"{what} is not valid ASN.1: {type(exc).__name__}") from None


def _bounded(data: bytes, limit: int, what: str) -> None:
    if not data:
        raise ChipFormatError(f"{what} is empty", reason="empty")
    if len(data) > limit:
        raise ChipFormatError(f"{what} is over {limit} bytes", reason="too_large")


@dataclass(frozen=True, slots=True)
class SignedContent:
    """A CMS SignedData (RFC 5652 §5) as read, its encapsulated content still bytes."""

    signed_data: cms.SignedData
    content_type: str  # eContentType, dotted
    content: bytes  # eContent's octets: what the messageDigest attribute covers


@dataclass(frozen=True, slots=True)
class SecurityObject:
    signed: SignedContent
    digest_algorithm: str  # hashAlgorithm of the LDSSecurityObject: sha256, sha1 ...
    hashes: Mapping[int, bytes]  # data group number -> its hash
    lds_version: str | None  # "0108" for LDS 1.8; None for version 0


def signed_content(data: bytes, what: str) -> SignedContent:
    """A DER ContentInfo holding SignedData with its content encapsulated (already walked)."""

    def read() -> SignedContent:
        info = cms.ContentInfo.load(data, strict=True)
        if info["content_type"].native != "signed_data":
            raise ChipFormatError(f"{what} is not CMS SignedData (RFC 5652 §5)", reason="not_cms")
        signed = info["content"]
        encap = signed["encap_content_info"]
        content = encap["content"]
        if not isinstance(content, core.ParsableOctetString) or content.contents is None:
            raise ChipFormatError(f"{what} has no encapsulated content", reason="no_content")
        # Parse everything now, so a malformed part is refused here and not later.
        signed.native  # noqa: B018 - forces asn1crypto's lazy parse
        return SignedContent(signed, encap["content_type"].dotted, bytes(content.contents))

    return asn1(what, read)


def parse_sod(data: bytes) -> SecurityObject:
    """EF.SOD (9303-10 §4.6.2) to its LDSSecurityObject, nothing verified yet (`pa.py` does)."""
    what = "EF.SOD"
    _bounded(data, MAX_SOD_BYTES, what)
    top = der.walk(data, what)
    if top.tag != 0x77:
        raise ChipFormatError(f"{what} does not start with tag 77 (9303-10 §4.6.2)", reason="tag")
    inner = top.value(data)
    der.walk(inner, what)  # the ContentInfo itself: one TLV filling the file
    signed = signed_content(inner, what)
    if signed.content_type != LDS_SECURITY_OBJECT:
        raise ChipFormatError(
            f"{what} encapsulates {signed.content_type}, not an LDS security object",
            reason="content_type",
        )
    der.walk(signed.content, "the LDS security object")
    return security_object(signed)


def security_object(signed: SignedContent) -> SecurityObject:
    what = "the LDS security object"

    def read() -> SecurityObject:
        lso = LdsSecurityObject.load(signed.content, strict=True)
        version = lso["version"].native
        if version not in (0, 1):
            raise ChipFormatError(f"{what} has version {version} (0 or 1)", reason="version")
        hashes: dict[int, bytes] = {}
        for item in lso["data_group_hash_values"]:
            number = item["data_group_number"].native
            if not 1 <= number <= 16 or number in hashes:
                raise ChipFormatError(f"{what} lists data group {number} wrongly", reason="dg")
            hashes[number] = item["data_group_hash_value"].native
        info = lso["lds_version_info"]
        lds = None if isinstance(info, core.Void) else str(info["lds_version"].native)
        algorithm = lso["hash_algorithm"]["algorithm"]
        return SecurityObject(signed, algorithm.native, hashes, lds)

    return asn1(what, read)


def parse_dg1(data: bytes) -> tuple[str, ...]:
    """EF.DG1 to the MRZ lines (9303-10 §4.7.1): `61` { `5F1F` MRZ }."""
    what = "EF.DG1"
    _bounded(data, MAX_DG1_BYTES, what)
    top = der.walk(data, what)
    if top.tag != 0x61:
        raise ChipFormatError(f"{what} does not start with tag 61 (9303-10 §4.7.1)", reason="tag")
    mrz = [t for t in der.children(data, top, what) if t.tag == 0x5F1F]
    if len(mrz) != 1:
        raise ChipFormatError(f"{what} holds no MRZ data element 5F1F", reason="no_mrz")
    raw = mrz[0].value(data)
    width = _MRZ_LENGTHS.get(len(raw))
    if width is None or not raw.isascii():
        count = len(raw)
        raise ChipFormatError(f"{what} holds {count} MRZ characters (90, 72 or 88)", reason="mrz")
    text = raw.decode("ascii")
    return tuple(text[i : i + width] for i in range(0, len(text), width))


def dg2_facial_record(data: bytes) -> bytes:
    """EF.DG2 to its first ISO/IEC 19794-5 facial record (9303-10 §4.7.2)."""
    what = "EF.DG2"
    _bounded(data, MAX_DG2_BYTES, what)
    top = der.walk(data, what)
    if top.tag != 0x75:
        raise ChipFormatError(f"{what} does not start with tag 75 (9303-10 §4.7.2)", reason="tag")
    group = _one(data, top, 0x7F61, what, "biometric information group template 7F61")
    template = _one(data, group, 0x7F60, what, "biometric information template 7F60")
    blocks = der.children(data, template, what)
    if any(t.tag == 0x7F2E for t in blocks):
        raise ChipFormatError(f"{what} holds an enciphered biometric block", reason="enciphered")
    record = [t for t in blocks if t.tag == 0x5F2E]
    if len(record) != 1:
        raise ChipFormatError(f"{what} holds no biometric data block 5F2E", reason="no_portrait")
    return record[0].value(data)


def _one(data: bytes, parent: der.Tlv, tag: int, what: str, name: str) -> der.Tlv:
    found = [t for t in der.children(data, parent, what) if t.tag == tag]
    if not found or not found[0].constructed:
        raise ChipFormatError(f"{what} holds no {name}", reason="structure")
    return found[0]
