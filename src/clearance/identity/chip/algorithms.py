"""Which digests and signatures Passive Authentication accepts, and the signature check itself.

ICAO 9303-12 §7.1 (Document Signer and CSCA keys) and Appendix A name RSA (PKCS#1 v1.5 and
RSASSA-PSS, RFC 8017 §8), ECDSA (X9.62 over the NIST P-curves and the Brainpool curves of RFC
5639) and the SHA-2 family. SHA-1 appears on passports issued before the move to SHA-2; it is
refused unless `PaPolicy.allow_sha1` is set, because chosen-prefix collisions on SHA-1 are
practical (Leurent & Peyrin, "SHA-1 is a Shambles", 2020): a forger could prepare a second data
group with the same SHA-1 hash as one a careless signer signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from asn1crypto import algos
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import Certificate

from clearance.errors import ChipAlgorithmError, ChipFormatError, ChipSignatureError

HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
# Curves cryptography (OpenSSL) verifies on: the NIST curves and RFC 5639 Brainpool r1 curves.
# Explicit curve parameters (used by a few CSCAs) are refused by cryptography when a key loads.
CURVES = frozenset(
    {
        "secp224r1",
        "secp256r1",
        "secp384r1",
        "secp521r1",
        "brainpoolP224r1",
        "brainpoolP256r1",
        "brainpoolP320r1",
        "brainpoolP384r1",
        "brainpoolP512r1",
    }
)


@dataclass(frozen=True, slots=True)
class PaPolicy:
    """What Passive Authentication accepts. Built once from `[identity.chip]`."""

    allow_sha1: bool = False
    min_rsa_bits: int = 2048
    # 9303-12 §5.3: a DS key signs for at most 3 months and its certificate lasts that plus the
    # longest document validity (~10 years); a CSCA key for 3-5 years, its certificate that
    # plus the DS certificates' lifetime. Anything longer is absurd, not a real certificate.
    max_ds_validity: timedelta = timedelta(days=366 * 12)
    max_csca_validity: timedelta = timedelta(days=366 * 20)

    def digest(self, name: str, what: str) -> hashes.HashAlgorithm:
        if name == "sha1" and not self.allow_sha1:
            raise ChipAlgorithmError(
                f"{what} uses SHA-1, refused: chosen-prefix collisions on SHA-1 are practical "
                "(set [identity.chip] allow_sha1 for older passports)",
                reason="sha1_refused",
            )
        algorithm = HASHES.get(name)
        if algorithm is None:
            raise ChipAlgorithmError(f"{what} uses digest {name}, not accepted", reason="digest")
        return algorithm()

    def check_key(self, key: object, what: str) -> None:
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < self.min_rsa_bits:
                raise ChipAlgorithmError(
                    f"{what} has a {key.key_size}-bit RSA key (at least {self.min_rsa_bits})",
                    reason="weak_key",
                )
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if key.curve.name not in CURVES:
                raise ChipAlgorithmError(f"{what} is on curve {key.curve.name}", reason="curve")
        else:
            raise ChipAlgorithmError(f"{what} is neither RSA nor ECDSA", reason="key_type")


def verify_cms(
    key: object,
    signature: bytes,
    data: bytes,
    algorithm: algos.SignedDigestAlgorithm,
    digest_name: str,
    policy: PaPolicy,
) -> str:
    """Verify a CMS signerInfo's signature (RFC 5652 §5.6); the algorithm's name for the record.
    `digest_name` is the signerInfo's digestAlgorithm, used where the signature algorithm
    names no hash of its own (rsaEncryption)."""
    what = "the SOD signature"
    try:
        kind = algorithm.signature_algo
    except ValueError:
        raise ChipAlgorithmError(f"{what} uses an unknown algorithm", reason="signature") from None
    if kind == "rsassa_pss":
        scheme: padding.AsymmetricPadding = _pss(algorithm, policy)
        digest = policy.digest(algorithm["parameters"]["hash_algorithm"]["algorithm"].native, what)
    else:
        try:
            named = algorithm.hash_algo
        except ValueError:
            named = digest_name
        digest = policy.digest(named, what)
        scheme = padding.PKCS1v15()
    try:
        if kind in ("rsassa_pkcs1v15", "rsassa_pss") and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, scheme, digest)
        elif kind == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(digest))
        else:
            raise ChipAlgorithmError(
                f"{what} uses {kind}, which does not fit the Document Signer's key",
                reason="signature",
            )
    except InvalidSignature:
        raise ChipSignatureError(
            f"{what} does not verify with the Document Signer's key", reason="bad_signature"
        ) from None
    return f"{kind}-{digest.name}"


def _pss(algorithm: algos.SignedDigestAlgorithm, policy: PaPolicy) -> padding.PSS:
    """RFC 4055 §3.1 RSASSA-PSS-params: MGF1 only, trailer field 1."""
    params = algorithm["parameters"]
    mgf = params["mask_gen_algorithm"]
    if mgf["algorithm"].native != "mgf1" or params["trailer_field"].native != "trailer_field_bc":
        raise ChipAlgorithmError("the SOD's RSASSA-PSS parameters are unusual", reason="pss")
    mgf_hash = policy.digest(mgf["parameters"]["algorithm"].native, "the SOD's MGF1")
    salt = params["salt_length"].native
    if not 0 <= salt <= 512:
        raise ChipFormatError("the SOD's PSS salt length is out of range", reason="pss")
    return padding.PSS(mgf=padding.MGF1(mgf_hash), salt_length=salt)


def verify_certificate(cert: Certificate, issuer_key: object, policy: PaPolicy, what: str) -> None:
    """The certificate's signature by `issuer_key` (RFC 5280 §6.1.3 (a)(1))."""
    try:
        digest_algorithm = cert.signature_hash_algorithm
        scheme = cert.signature_algorithm_parameters
    except (UnsupportedAlgorithm, ValueError):
        raise ChipAlgorithmError(
            f"{what} is signed with an unsupported algorithm", reason="sig"
        ) from None
    if digest_algorithm is None:
        raise ChipAlgorithmError(f"{what} is signed with no digest (Ed25519?)", reason="sig")
    policy.digest(digest_algorithm.name, what)
    try:
        if isinstance(issuer_key, rsa.RSAPublicKey) and isinstance(
            scheme, (padding.PKCS1v15, padding.PSS)
        ):
            issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, scheme, digest_algorithm)
        elif isinstance(issuer_key, ec.EllipticCurvePublicKey) and isinstance(scheme, ec.ECDSA):
            issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, scheme)
        else:
            raise ChipAlgorithmError(
                f"{what}'s signature does not fit the issuer's key", reason="sig"
            )
    except InvalidSignature:
        raise ChipSignatureError(f"{what}'s signature does not verify", reason="cert") from None
