"""CSCA master lists: the trust anchors of Passive Authentication, read from what states and
the ICAO PKD publish.

Three forms are read, detected by content:
- a PEM bundle of certificates (what an operator assembles by hand);
- LDIF from the ICAO PKD download (RFC 2849: folded lines, `attr:: base64`), its
  `CscaMasterListData` values (each a CMS master list) and `cACertificate;binary` /
  `userCertificate;binary` values;
- an ICAO CMS master list (9303-12 §8: SignedData, eContentType id-icao-cscaMasterList, content
  CscaMasterList ::= SEQUENCE { version, certList SET OF Certificate }), its signature checked
  with the signer certificate it carries, and that signer issued by a CSCA it lists.

A certificate that is not a CA with keyCertSign, will not load (explicit curve parameters), or
claims an absurd validity is left out and counted with the reason, as list loaders do with
entries they cannot read. The version's identity is the SHA-256 over the sorted DER of the
certificates kept: the same anchors give the same digest whatever the file's form.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from asn1crypto import core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from clearance.errors import ChipError, ChipFormatError, ChipUntrusted
from clearance.identity.chip import der, lds
from clearance.identity.chip.algorithms import PaPolicy, verify_certificate
from clearance.identity.chip.certificates import check_csca, load_certificate
from clearance.identity.chip.pa import verify_signer

MAX_BYTES = 32 * 1024 * 1024  # the PKD's master-list LDIF is a few MB
MAX_CERTIFICATES = 5000
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s+([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----")
_LDIF_VALUES = {"cscamasterlistdata", "cacertificate;binary", "usercertificate;binary"}


class MasterListFormat(StrEnum):
    PEM = "pem"
    LDIF = "ldif"
    CMS = "cms"  # an ICAO CMS master list
    DER = "der"  # a single certificate


class CscaMasterList(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("version", core.Integer),
        ("cert_list", core.SetOf, {"spec": asn1_x509.Certificate}),
    ]


@dataclass(frozen=True, slots=True)
class MasterList:
    certificates: tuple[x509.Certificate, ...]
    format: MasterListFormat
    digest: str  # SHA-256 over the sorted DER of `certificates`, hex
    skipped: tuple[str, ...]  # one reason per certificate left out
    signers: tuple[str, ...]  # subjects of the CMS master lists' signers (RFC 4514)

    def der(self) -> list[bytes]:
        return [c.public_bytes(Encoding.DER) for c in self.certificates]


def certificate_set_digest(ders: list[bytes]) -> str:
    return hashlib.sha256(b"".join(sorted(ders))).hexdigest()


def from_der(ders: list[bytes], fmt: MasterListFormat) -> MasterList:
    """A stored master list again (its certificates were checked when it was loaded)."""
    certs = tuple(load_certificate(d, "a stored CSCA certificate") for d in ders)
    return MasterList(certs, fmt, certificate_set_digest(ders), (), ())


def parse(data: bytes, *, policy: PaPolicy | None = None) -> MasterList:
    policy = policy or PaPolicy()
    if len(data) > MAX_BYTES:
        raise ChipFormatError(f"the master list is over {MAX_BYTES >> 20} MiB", reason="too_large")
    signers: list[str] = []
    head = data.lstrip()[:200]
    if b"-----BEGIN CERTIFICATE-----" in data:
        fmt, ders = MasterListFormat.PEM, list(_pem(data))
    elif head.startswith((b"dn:", b"version:", b"#")):
        fmt, ders = MasterListFormat.LDIF, list(_ldif(data, policy, signers))
    elif head.startswith(b"\x30"):
        try:
            fmt, ders = MasterListFormat.CMS, _cms(data, policy, signers)
        except ChipFormatError:
            fmt, ders = MasterListFormat.DER, [data]
    else:
        raise ChipFormatError("the master list is not PEM, LDIF or DER", reason="format")
    return _keep(ders, fmt, tuple(signers), policy)


def _keep(
    ders: list[bytes], fmt: MasterListFormat, signers: tuple[str, ...], policy: PaPolicy
) -> MasterList:
    if len(ders) > MAX_CERTIFICATES:
        raise ChipFormatError(f"the master list holds over {MAX_CERTIFICATES} certificates")
    kept: dict[bytes, x509.Certificate] = {}
    skipped: list[str] = []
    for i, item in enumerate(ders, 1):
        try:
            cert = load_certificate(item, f"certificate {i}")
            # Only the profile and the validity's sanity: an expired CSCA is kept (the
            # documents it signed fail on it at verification, with that reason).
            check_csca(cert, at=cert.not_valid_before_utc, policy=policy)
        except ChipError as exc:
            skipped.append(f"certificate {i}: {exc.detail}")
            continue
        kept.setdefault(cert.public_bytes(Encoding.DER), cert)
    if not kept:
        raise ChipFormatError("the master list holds no usable CSCA certificate", reason="empty")
    digest = certificate_set_digest(list(kept))
    return MasterList(tuple(kept.values()), fmt, digest, tuple(skipped), signers)


def _pem(data: bytes) -> Iterator[bytes]:
    for match in _PEM.finditer(data):
        try:
            yield base64.b64decode(b"".join(match.group(1).split()), validate=True)
        except binascii.Error:
            raise ChipFormatError("a PEM certificate is not valid base64", reason="pem") from None


def _ldif(data: bytes, policy: PaPolicy, signers: list[str]) -> Iterator[bytes]:
    """RFC 2849: a line starting with one space continues the previous one."""
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\n ", "")
    for line in text.split("\n"):
        name, sep, value = line.partition("::")
        if not sep or name.strip().lower() not in _LDIF_VALUES:
            continue
        try:
            blob = base64.b64decode(value.strip(), validate=True)
        except binascii.Error:
            raise ChipFormatError(f"an LDIF {name} value is not base64", reason="ldif") from None
        if name.strip().lower() == "cscamasterlistdata":
            yield from _cms(blob, policy, signers)
        else:
            yield blob


def _cms(data: bytes, policy: PaPolicy, signers: list[str]) -> list[bytes]:
    what = "the CMS master list"
    der.walk(data, what, max_nodes=MAX_CERTIFICATES * 200)
    signed = lds.signed_content(data, what)
    if signed.content_type != lds.CSCA_MASTER_LIST:
        raise ChipFormatError(f"{what} is not an ICAO CSCA master list", reason="content_type")
    signer = verify_signer(signed, policy=policy, what=what)

    def read() -> list[bytes]:
        listed = CscaMasterList.load(signed.content, strict=True)
        return [c.dump() for c in listed["cert_list"]]

    ders = lds.asn1(what, read)
    for item in ders[:MAX_CERTIFICATES]:
        try:
            csca = load_certificate(item, "a listed certificate")
            if csca.subject != signer.certificate.issuer:
                continue
            verify_certificate(signer.certificate, csca.public_key(), policy, "the list signer")
        except ChipError:
            continue
        signers.append(signer.certificate.subject.rfc4514_string())
        return ders
    raise ChipUntrusted(f"{what}'s signer is issued by no CSCA it lists", reason="ml_signer")
