"""Passive Authentication of an eMRTD chip's data (ICAO 9303-11 §5.1), server-side.

Given EF.DG1, EF.DG2 and EF.SOD as the phone read them, and the CSCA certificates we trust:

1. parse EF.SOD under limits (`lds.parse_sod`, 9303-10 §4.6.2);
2. the SOD's CMS SignedData (RFC 5652 §5): one signerInfo whose sid names the Document Signer
   certificate the SOD carries; signedAttrs present, their contentType equal to eContentType
   (§11.1) and their messageDigest equal to the hash of eContent (§11.2); the signature over
   the DER of signedAttrs (§5.4) by the DS key, with an accepted algorithm (`algorithms.py`);
3. the DS certificate: its profile and dates (and the signing time, when signed, inside them);
   its chain to a loaded CSCA (`certificates.py`; 9303-11 §5.1.1 steps 1-2);
4. the hash of DG1 and of DG2, by the LDSSecurityObject's algorithm, against the SOD
   (9303-11 §5.1.1 step 3); a data group missing from the SOD is a mismatch;
5. DG1's MRZ through `parse_mrz` (the same check digits as a printed MRZ), its issuing state
   the country of the DS and CSCA (a CSCA signs only its own state's documents);
6. DG2's portrait extracted (`portrait.py`) for the face match.

Anything wrong is a `ChipError` with a reason; an MRZ that fails its own rules is the
`MrzError` `parse_mrz` raises. Nothing here touches the network, the database or a file.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from clearance.errors import (
    ChipFormatError,
    ChipHashMismatch,
    ChipSignatureError,
    ChipUntrusted,
)
from clearance.identity.chip import lds
from clearance.identity.chip.algorithms import PaPolicy, verify_cms
from clearance.identity.chip.certificates import (
    check_ds,
    country,
    issuer_of,
    load_certificate,
)
from clearance.identity.chip.portrait import Portrait, facial_record
from clearance.identity.mrz import MrzResult, parse_mrz


@dataclass(frozen=True, slots=True)
class Signer:
    certificate: x509.Certificate
    algorithm: str  # "rsassa_pss-sha256", "ecdsa-sha384" ...
    signing_time: datetime | None


@dataclass(frozen=True, slots=True)
class ChipEvidence:
    """What a passed Passive Authentication established; names of certificates, no person."""

    mrz: MrzResult
    portrait: Portrait
    digest_algorithm: str  # of the data-group hashes
    signature_algorithm: str
    document_signer: str  # the DS subject, RFC 4514
    csca: str  # the CSCA subject, RFC 4514
    csca_fingerprint: str  # SHA-256 of the CSCA certificate, hex
    lds_version: str | None


def _signer_info(signed: cms.SignedData) -> cms.SignerInfo:
    infos = signed["signer_infos"]
    if len(infos) != 1:
        raise ChipFormatError(f"EF.SOD has {len(infos)} signers (one)", reason="signers")
    info: cms.SignerInfo = infos[0]
    return info


def _certificate(signed: cms.SignedData, info: cms.SignerInfo) -> x509.Certificate:
    """The certificate the signerInfo's sid names (RFC 5652 §5.3), from the SOD's own set."""
    sid = info["sid"]
    for choice in signed["certificates"]:
        if choice.name != "certificate":
            continue
        candidate = choice.chosen
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if (
                candidate.issuer == wanted["issuer"]
                and candidate.serial_number == wanted["serial_number"].native
            ):
                return load_certificate(candidate.dump(), "the Document Signer certificate")
        elif candidate.key_identifier == sid.chosen.native:
            return load_certificate(candidate.dump(), "the Document Signer certificate")
    raise ChipUntrusted(
        "EF.SOD carries no Document Signer certificate matching its signer",
        reason="no_ds_certificate",
    )


def _attributes(info: cms.SignerInfo) -> dict[str, list[object]]:
    attrs = info["signed_attrs"]
    if not isinstance(attrs, cms.CMSAttributes) or not len(attrs):
        raise ChipSignatureError("EF.SOD's signer has no signed attributes", reason="no_attrs")
    found: dict[str, list[object]] = {}
    for attr in attrs:
        name = attr["type"].native
        if name in found:  # RFC 5652 §5.3: each attribute type at most once
            raise ChipSignatureError(f"EF.SOD repeats attribute {name}", reason="attrs")
        found[name] = list(attr["values"].native)
    return found


def verify_signer(signed: lds.SignedContent, *, policy: PaPolicy, what: str = "EF.SOD") -> Signer:
    """Step 2 for any CMS SignedData with encapsulated content (the SOD, a master list); the
    signer's certificate is checked by the caller (dates, chain)."""

    def read() -> Signer:
        info = _signer_info(signed.signed_data)
        cert = _certificate(signed.signed_data, info)
        attrs = _attributes(info)
        digest_name = info["digest_algorithm"]["algorithm"].native
        digest = policy.digest(digest_name, f"{what}'s message digest")
        content_type = attrs.get("content_type", [None])
        if len(content_type) != 1 or content_type[0] != _native_type(signed.content_type):
            raise ChipSignatureError(
                f"{what}'s signed contentType differs from its content (RFC 5652 §11.1)",
                reason="content_type_attr",
            )
        expected = hashlib.new(digest.name, signed.content).digest()
        message_digest = attrs.get("message_digest", [None])
        if len(message_digest) != 1 or not isinstance(message_digest[0], bytes):
            raise ChipSignatureError(f"{what} has no messageDigest", reason="message_digest")
        if not hmac.compare_digest(message_digest[0], expected):
            raise ChipSignatureError(
                f"{what}'s content does not match its signed messageDigest (RFC 5652 §11.2)",
                reason="message_digest",
            )
        # §5.4: the signature covers the DER of the SET OF attributes, not their [0] form.
        signed_attrs = b"\x31" + info["signed_attrs"].dump()[1:]
        policy.check_key(cert.public_key(), "the Document Signer certificate")
        algorithm = verify_cms(
            cert.public_key(),
            info["signature"].native,
            signed_attrs,
            info["signature_algorithm"],
            digest_name,
            policy,
        )
        times = attrs.get("signing_time", [None])
        signing_time = times[0] if isinstance(times[0], datetime) else None
        return Signer(cert, algorithm, signing_time)

    return lds.asn1(what, read)


def _native_type(dotted: str) -> str:
    """asn1crypto names the contentType attribute's value when it knows the OID."""
    return str(cms.ContentType.map(dotted))


def _check_signing_time(signer: Signer) -> None:
    when, cert = signer.signing_time, signer.certificate
    if when is None:
        return
    if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
        raise ChipSignatureError(
            "EF.SOD was signed outside its Document Signer certificate's validity",
            reason="signing_time",
        )


def check_hashes(sod: lds.SecurityObject, groups: dict[int, bytes], policy: PaPolicy) -> None:
    """9303-11 §5.1.1 step 3: each data group read equals its hash in the SOD."""
    digest = policy.digest(sod.digest_algorithm, "the data-group hashes")
    for number, content in groups.items():
        stored = sod.hashes.get(number)
        if stored is None:
            raise ChipHashMismatch(f"EF.SOD holds no hash of DG{number}", reason=f"dg{number}")
        actual = hashlib.new(digest.name, content).digest()
        if not hmac.compare_digest(stored, actual):
            raise ChipHashMismatch(
                f"DG{number} does not match its hash in EF.SOD (edited or swapped)",
                reason=f"dg{number}_hash_mismatch",
            )


def passive_authentication(
    dg1: bytes,
    dg2: bytes,
    sod: bytes,
    *,
    cscas: Sequence[x509.Certificate],
    at: datetime,
    policy: PaPolicy | None = None,
) -> ChipEvidence:
    """Verify the three files; `at` is now (UTC, aware): certificates must be valid then."""
    policy = policy or PaPolicy()
    security = lds.parse_sod(sod)
    signer = verify_signer(security.signed, policy=policy)
    check_ds(signer.certificate, at=at, policy=policy)
    _check_signing_time(signer)
    csca = issuer_of(signer.certificate, cscas, at=at, policy=policy)
    check_hashes(security, {1: dg1, 2: dg2}, policy)
    mrz = parse_mrz(lds.parse_dg1(dg1), today=at.date())
    state = mrz.issuing_state.alpha2
    if state is not None and state != country(signer.certificate.issuer):
        raise ChipUntrusted(
            f"DG1's issuing state {mrz.issuing_state.icao} is not the Document Signer's country",
            reason="country_mismatch",
        )
    if country(csca.subject) != country(signer.certificate.issuer):
        raise ChipUntrusted("the CSCA's country is not the DS issuer's", reason="country_mismatch")
    portrait = facial_record(lds.dg2_facial_record(dg2))
    return ChipEvidence(
        mrz=mrz,
        portrait=portrait,
        digest_algorithm=security.digest_algorithm,
        signature_algorithm=signer.algorithm,
        document_signer=signer.certificate.subject.rfc4514_string(),
        csca=csca.subject.rfc4514_string(),
        csca_fingerprint=hashlib.sha256(csca.public_bytes(Encoding.DER)).hexdigest(),
        lds_version=security.lds_version,
    )


def precheck(dg1: bytes, dg2: bytes, sod: bytes) -> None:
    """What the serving process checks before queueing: every file's size and structure and
    that the SOD lists DG1 and DG2. No key, no trust anchor, no pixel is needed for this."""
    lds.parse_dg1(dg1)
    facial_record(lds.dg2_facial_record(dg2))
    security = lds.parse_sod(sod)
    missing = {1, 2} - set(security.hashes)
    if missing:
        raise ChipHashMismatch(f"EF.SOD holds no hash of DG{min(missing)}", reason="dg_missing")
