"""The Document Signer certificate and its chain to a CSCA (ICAO 9303-12 §5, §7.1; RFC 5280 §6).

The eMRTD PKI has two levels: each state's Country Signing CA (CSCA, self-signed, loaded here
from a master list) signs its Document Signer certificates (DS), and a DS signs each chip's
EF.SOD. So the path is DS -> CSCA, checked as RFC 5280 §6.1.3 does for one step: the DS issuer
names the CSCA's subject (and its authority key identifier the CSCA's key, when both carry
one), the CSCA's key verifies the DS signature, both are within their validity at the time of
verification, and each has the key usage its role needs (9303-12 §7.1.1: DS digitalSignature,
CSCA keyCertSign with cA true).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.x509.oid import NameOID

from clearance.errors import (
    ChipAlgorithmError,
    ChipCertificateError,
    ChipError,
    ChipFormatError,
    ChipSignatureError,
    ChipUntrusted,
)
from clearance.identity.chip.algorithms import PaPolicy, verify_certificate


def load_certificate(der: bytes, what: str) -> x509.Certificate:
    try:
        cert = x509.load_der_x509_certificate(der)
        cert.public_key()  # an unsupported key (explicit curve parameters) fails here
        cert.extensions  # noqa: B018 - a malformed extension fails here, not later
    except UnsupportedAlgorithm:
        raise ChipAlgorithmError(f"{what} has a key of an unsupported kind", reason="key") from None
    except (ValueError, TypeError):
        raise ChipFormatError(f"{what} is not a usable X.509 certificate", reason="x509") from None
    return cert


def country(name: x509.Name) -> str | None:
    """The C attribute of a DS issuer or CSCA subject (9303-12 §7.1.1: mandatory)."""
    found = name.get_attributes_for_oid(NameOID.COUNTRY_NAME)
    value = found[0].value if found else None
    return value.upper() if isinstance(value, str) else None


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> object | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def check_dates(cert: x509.Certificate, *, at: datetime, role: str, policy: PaPolicy) -> None:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    limit = policy.max_ds_validity if role == "ds" else policy.max_csca_validity
    name = "the Document Signer certificate" if role == "ds" else "the CSCA certificate"
    if end <= start or end - start > limit:
        raise ChipCertificateError(
            f"{name} claims an absurd validity ({start.date()} to {end.date()}; at most "
            f"{limit.days} days)",
            reason=f"{role}_absurd_validity",
        )
    if at < start:
        raise ChipCertificateError(
            f"{name} is not valid until {start.date()}", reason=f"{role}_not_yet_valid"
        )
    if at > end:
        raise ChipCertificateError(f"{name} expired on {end.date()}", reason=f"{role}_expired")


def check_ds(ds: x509.Certificate, *, at: datetime, policy: PaPolicy) -> None:
    what = "the Document Signer certificate"
    policy.check_key(ds.public_key(), what)
    usage = _extension(ds, x509.KeyUsage)
    if not isinstance(usage, x509.KeyUsage) or not usage.digital_signature:
        raise ChipCertificateError(f"{what} lacks keyUsage digitalSignature", reason="ds_key_usage")
    basic = _extension(ds, x509.BasicConstraints)
    if isinstance(basic, x509.BasicConstraints) and basic.ca:
        raise ChipCertificateError(f"{what} is a CA certificate", reason="ds_is_ca")
    check_dates(ds, at=at, role="ds", policy=policy)


def check_csca(csca: x509.Certificate, *, at: datetime, policy: PaPolicy) -> None:
    what = "the CSCA certificate"
    basic = _extension(csca, x509.BasicConstraints)
    if not isinstance(basic, x509.BasicConstraints) or not basic.ca:
        raise ChipCertificateError(f"{what} is not a CA (basicConstraints)", reason="csca_not_ca")
    usage = _extension(csca, x509.KeyUsage)
    if not isinstance(usage, x509.KeyUsage) or not usage.key_cert_sign:
        raise ChipCertificateError(f"{what} lacks keyUsage keyCertSign", reason="csca_key_usage")
    check_dates(csca, at=at, role="csca", policy=policy)


def _key_ids_agree(ds: x509.Certificate, csca: x509.Certificate) -> bool:
    aki = _extension(ds, x509.AuthorityKeyIdentifier)
    ski = _extension(csca, x509.SubjectKeyIdentifier)
    if not isinstance(aki, x509.AuthorityKeyIdentifier) or aki.key_identifier is None:
        return True
    if not isinstance(ski, x509.SubjectKeyIdentifier):
        return True
    return aki.key_identifier == ski.digest


def issuer_of(
    ds: x509.Certificate,
    cscas: Sequence[x509.Certificate],
    *,
    at: datetime,
    policy: PaPolicy,
) -> x509.Certificate:
    """The CSCA that issued `ds`, checked; `ChipUntrusted` when none of `cscas` did."""
    named = [c for c in cscas if c.subject == ds.issuer and _key_ids_agree(ds, c)]
    if not named:
        raise ChipUntrusted(
            f"the Document Signer's issuer ({ds.issuer.rfc4514_string()}) is no CSCA in the "
            "loaded master list",
            reason="unknown_csca",
        )
    last: ChipError | None = None
    for csca in named:
        try:
            policy.check_key(csca.public_key(), "the CSCA certificate")
            verify_certificate(ds, csca.public_key(), policy, "the Document Signer certificate")
        except ChipSignatureError as exc:
            last = exc
            continue
        check_csca(csca, at=at, policy=policy)
        return csca
    raise ChipUntrusted(
        "the Document Signer certificate is not signed by the CSCA it names",
        reason="ds_not_signed_by_csca",
    ) from last
