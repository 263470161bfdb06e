"""Passive Authentication (ICAO 9303-11 §5.1) of chip data built by tests/fixtures/identity/chip.py:
a good passport verifies with every signature scheme we accept; every forged or broken variant
is refused with its reason, never a crash and never an accept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509

from clearance.errors import (
    ChipAlgorithmError,
    ChipCertificateError,
    ChipError,
    ChipFormatError,
    ChipHashMismatch,
    ChipSignatureError,
    ChipUntrusted,
    MrzCheckDigitError,
)
from clearance.identity.chip import (
    ChipEvidence,
    PaPolicy,
    PortraitFormat,
    decode,
    passive_authentication,
    precheck,
)
from clearance.identity.chip.lds import MAX_SOD_BYTES
from tests.fixtures.identity import chip
from tests.fixtures.identity.chip import NOW, SodOptions


def verify(
    p: chip.Passport, *, policy: PaPolicy | None = None, cscas: list[x509.Certificate] | None = None
) -> ChipEvidence:
    return passive_authentication(
        p.dg1, p.dg2, p.sod, cscas=p.cscas if cscas is None else cscas, at=NOW, policy=policy
    )


def refused(
    p: chip.Passport,
    kind: type[ChipError],
    reason: str,
    *,
    cscas: list[x509.Certificate] | None = None,
) -> ChipError:
    with pytest.raises(kind) as caught:
        verify(p, cscas=cscas)
    assert caught.value.reason == reason, caught.value.detail
    assert caught.value.status == 422
    return caught.value


def test_a_good_passport_verifies() -> None:
    p = chip.passport()
    evidence = verify(p)
    assert evidence.mrz.primary_identifier == "DE BRUIJN"
    assert evidence.mrz.issuing_state.alpha2 == "NL"
    assert evidence.signature_algorithm == "rsassa_pkcs1v15-sha256"
    assert evidence.digest_algorithm == "sha256"
    assert evidence.csca == "CN=CSCA Test,O=Test State,C=NL"
    assert evidence.portrait.format is PortraitFormat.JPEG
    assert decode(evidence.portrait).width > 100
    precheck(p.dg1, p.dg2, p.sod)


@pytest.mark.parametrize(
    ("signature", "key", "digest"),
    [
        ("pss", "rsa", "sha256"),
        ("pkcs1", "rsa", "sha512"),
        ("ecdsa", "secp256r1", "sha256"),
        ("ecdsa", "secp384r1", "sha384"),
        ("ecdsa", "secp521r1", "sha512"),
        ("ecdsa", "brainpoolP256r1", "sha256"),
        ("ecdsa", "brainpoolP384r1", "sha224"),
    ],
)
def test_every_accepted_scheme_verifies(signature: str, key: str, digest: str) -> None:
    ds_key = chip.rsa_key(2048) if key == "rsa" else chip.ec_key(key)
    signer = chip.document_signer(chip.default_csca(), key=ds_key, pss=signature == "pss")
    opts = SodOptions(digest=digest, signer_digest=digest, signature=signature)
    evidence = verify(chip.passport(signer=signer, opts=opts))
    assert (
        evidence.signature_algorithm
        == f"{'rsassa_' if key == 'rsa' else ''}{signature}-{digest}".replace(
            "rsassa_pkcs1", "rsassa_pkcs1v15"
        )
    )
    assert evidence.digest_algorithm == digest


def test_an_ecdsa_csca_with_a_pss_signed_ds() -> None:
    authority = chip.csca(key=chip.ec_key("brainpoolP384r1"), cn="CSCA EC")
    assert verify(chip.passport(authority=authority)).csca.startswith("CN=CSCA EC")
    rsa_authority = chip.csca(key=chip.rsa_key(3072, 1), cn="CSCA PSS", pss=True)
    signer = chip.document_signer(rsa_authority, pss=True)
    assert verify(chip.passport(authority=rsa_authority, signer=signer))


def test_a_jpeg2000_portrait_is_extracted_and_decoded() -> None:
    p = chip.passport(image=chip.portrait_jpeg2000(), image_kind=1)
    portrait = verify(p).portrait
    assert portrait.format is PortraitFormat.JPEG2000
    assert decode(portrait).height > 100


# --- forged data groups ---


def test_dg1_edited_after_signing_is_refused() -> None:
    p = chip.passport()
    p.dg1 = chip.dg1(chip.mrz_lines(surname="MALLORY"))
    refused(p, ChipHashMismatch, "dg1_hash_mismatch")


def test_dg2_swapped_is_refused() -> None:
    p = chip.passport()
    p.dg2 = chip.dg2(chip.portrait_jpeg("hopper.jpg"))
    refused(p, ChipHashMismatch, "dg2_hash_mismatch")


def test_a_sod_without_the_hash_of_dg2_is_refused() -> None:
    p = chip.passport()
    signer = p.ds
    assert signer is not None
    p.sod = chip.sod({1: p.dg1}, signer)
    refused(p, ChipHashMismatch, "dg2")
    with pytest.raises(ChipHashMismatch):
        precheck(p.dg1, p.dg2, p.sod)


def test_a_signed_mrz_with_a_wrong_check_digit_is_the_mrz_error() -> None:
    lines = list(chip.mrz_lines())
    lines[1] = lines[1][:9] + str((int(lines[1][9]) + 1) % 10) + lines[1][10:]
    with pytest.raises(MrzCheckDigitError):
        verify(chip.passport(lines=lines))


def test_a_passport_of_another_state_signed_by_this_csca_is_refused() -> None:
    refused(
        chip.passport(lines=chip.mrz_lines(issuing_state="DEU")), ChipUntrusted, "country_mismatch"
    )


# --- hash and signature algorithms ---


def test_sha1_is_refused_unless_configured() -> None:
    p = chip.passport(opts=SodOptions(digest="sha1"))
    error = refused(p, ChipAlgorithmError, "sha1_refused")
    assert "collision" in error.detail
    assert verify(p, policy=PaPolicy(allow_sha1=True)).digest_algorithm == "sha1"


def test_sha1_signatures_are_refused_too() -> None:
    p = chip.passport(opts=SodOptions(signer_digest="sha1"))
    refused(p, ChipAlgorithmError, "sha1_refused")


def test_an_unsupported_hash_algorithm_is_refused() -> None:
    refused(chip.passport(opts=SodOptions(digest="md5")), ChipAlgorithmError, "digest")
    refused(chip.passport(opts=SodOptions(signer_digest="md5")), ChipAlgorithmError, "digest")


def test_a_sod_signed_by_a_key_not_in_the_ds_certificate_is_refused() -> None:
    p = chip.passport(opts=SodOptions(sign_with=chip.rsa_key(2048, 7)))
    refused(p, ChipSignatureError, "bad_signature")


def test_an_rsa_signature_claimed_as_ecdsa_is_refused() -> None:
    refused(chip.passport(opts=SodOptions(signature="ecdsa")), ChipError, "signature")


def test_signed_attributes_must_match_the_content() -> None:
    p = chip.passport(opts=SodOptions(message_digest=b"\x00" * 32))
    refused(p, ChipSignatureError, "message_digest")
    p = chip.passport(opts=SodOptions(content_type_attr="1.2.840.113549.1.7.1"))
    refused(p, ChipSignatureError, "content_type_attr")


def test_a_weak_rsa_key_is_refused() -> None:
    signer = chip.document_signer(chip.default_csca(), key=chip.rsa_key(1024))
    refused(chip.passport(signer=signer), ChipAlgorithmError, "weak_key")


# --- certificates ---


def test_an_expired_ds_certificate_is_refused() -> None:
    signer = chip.document_signer(
        chip.default_csca(),
        not_before=NOW - timedelta(days=4000),
        not_after=NOW - timedelta(days=1),
    )
    p = chip.passport(signer=signer, opts=SodOptions(signing_time=NOW - timedelta(days=3000)))
    refused(p, ChipCertificateError, "ds_expired")


def test_a_sod_signed_outside_the_ds_validity_is_refused() -> None:
    p = chip.passport(opts=SodOptions(signing_time=NOW - timedelta(days=365)))
    refused(p, ChipSignatureError, "signing_time")


def test_a_ds_from_an_unknown_csca_is_refused() -> None:
    stranger = chip.csca(key=chip.rsa_key(3072, 2), cn="CSCA Elsewhere")
    p = chip.passport(authority=stranger)
    refused(p, ChipUntrusted, "unknown_csca", cscas=[chip.default_csca().cert])


def test_a_ds_certificate_forged_under_the_right_csca_name_is_refused() -> None:
    authority = chip.default_csca()
    forged = chip.document_signer(authority, signed_by=chip.rsa_key(3072, 3))
    refused(
        chip.passport(authority=authority, signer=forged), ChipUntrusted, "ds_not_signed_by_csca"
    )


def test_a_csca_not_yet_valid_is_refused() -> None:
    authority = chip.csca(
        key=chip.rsa_key(3072, 4),
        cn="CSCA Future",
        not_before=NOW + timedelta(days=10),
        not_after=NOW + timedelta(days=4000),
    )
    refused(chip.passport(authority=authority), ChipCertificateError, "csca_not_yet_valid")


def test_certificates_with_absurd_validity_are_refused() -> None:
    authority = chip.default_csca()
    century = chip.document_signer(authority, not_after=NOW + timedelta(days=100 * 365))
    refused(chip.passport(signer=century), ChipCertificateError, "ds_absurd_validity")
    forever = chip.csca(
        key=chip.rsa_key(3072, 5),
        cn="CSCA Forever",
        not_before=NOW - timedelta(days=1),
        not_after=NOW.replace(year=9999),
    )
    refused(chip.passport(authority=forever), ChipCertificateError, "csca_absurd_validity")


def test_a_ds_without_digital_signature_or_a_csca_that_is_no_ca_is_refused() -> None:
    authority = chip.default_csca()
    signer = chip.document_signer(authority, digital_signature=False)
    refused(chip.passport(signer=signer), ChipCertificateError, "ds_key_usage")
    not_ca = chip.csca(key=chip.rsa_key(3072, 6), cn="CSCA Not CA", ca=False)
    refused(chip.passport(authority=not_ca), ChipCertificateError, "csca_not_ca")


# --- hostile files ---


def _nested(depth: int) -> bytes:
    inner = b"\x05\x00"
    for _ in range(depth):
        inner = chip.tlv(0x30, inner)
    return chip.tlv(0x77, inner)


@pytest.mark.parametrize(
    ("sod", "reason"),
    [
        (b"\x77\x84\xff\xff\xff\xf0" + b"\x30" * 64, "length_bomb"),  # claims 4 GiB
        (b"\x77\x88" + b"\xff" * 8 + b"\x30\x00", "length_bomb"),  # an 8-octet length
        (b"\x77\x80\x30\x80\x00\x00\x00\x00", "indefinite_length"),
        (_nested(200), "too_deep"),
        (b"", "empty"),
        (b"\x77\x10" + b"\x00" * (MAX_SOD_BYTES), "too_large"),
        (b"\x30\x03\x02\x01\x00", "tag"),
    ],
)
def test_hostile_sods_are_refused_with_their_reason(sod: bytes, reason: str) -> None:
    p = chip.passport()
    p.sod = sod
    with pytest.raises(ChipFormatError) as caught:
        verify(p)
    assert caught.value.reason == reason
    with pytest.raises(ChipFormatError):
        precheck(p.dg1, p.dg2, sod)


@pytest.mark.parametrize("part", ["dg1", "dg2", "sod"])
@pytest.mark.parametrize("cut", [1, 7, 100])
def test_truncated_files_are_refused(part: str, cut: int) -> None:
    p = chip.passport()
    setattr(p, part, getattr(p, part)[:-cut])
    with pytest.raises(ChipError) as caught:
        verify(p)
    # A cut DG is caught by its hash (it is checked first) or its own walk; a cut SOD by the walk.
    assert caught.value.reason in {"truncated", f"{part}_hash_mismatch"}
    with pytest.raises(ChipFormatError):
        precheck(p.dg1, p.dg2, p.sod)


def test_a_portrait_that_is_not_an_image_is_refused() -> None:
    p = chip.passport(image=b"\xff\xd8\xff" + b"not really a jpeg" * 10)
    evidence = verify(p)  # the chip vouches for the bytes, not that they decode
    with pytest.raises(ChipFormatError) as caught:
        decode(evidence.portrait)
    assert caught.value.reason == "portrait"


def test_a_dg2_with_a_lying_facial_record_length_is_refused() -> None:
    record = chip.facial_record(chip.portrait_jpeg())
    lying = record[:8] + (len(record) + 50).to_bytes(4, "big") + record[12:]
    two = chip.tlv(
        0x75, chip.tlv(0x7F61, chip.tlv(0x02, b"\x01") + chip.tlv(0x7F60, chip.tlv(0x5F2E, lying)))
    )
    p = chip.passport()
    signer = p.ds
    assert signer is not None
    p.dg2, p.sod = two, chip.sod({1: p.dg1, 2: two}, signer)
    with pytest.raises(ChipFormatError) as caught:
        verify(p)
    assert caught.value.reason == "length"


def test_a_ds_key_on_an_unknown_curve_is_refused() -> None:
    """atheris found this: cryptography's UnsupportedAlgorithm escaped from public_key()."""
    signer = chip.document_signer(chip.default_csca(), key=chip.ec_key("brainpoolP256r1"))
    p = chip.passport(signer=signer, opts=SodOptions(signature="ecdsa"))
    brainpool = bytes.fromhex("06092b2403030208010107")  # 1.3.36.3.3.2.8.1.1.7
    assert brainpool in p.sod
    p.sod = p.sod.replace(brainpool, bytes.fromhex("06092b0403030208010107"))
    with pytest.raises(ChipAlgorithmError) as caught:
        verify(p)
    assert caught.value.reason == "key"


def test_the_chip_room_points_inward() -> None:
    """identity/chip/ is a room: it uses the mrz and document rooms and the error tree, never
    the top of identity (decision, service, models) nor any other package of ours."""
    from tests.test_architecture import GRAPH

    allowed = ("clearance.identity.chip", "clearance.identity.mrz", "clearance.identity.document")
    reached = {
        target
        for module, targets in GRAPH.items()
        if module.startswith("clearance.identity.chip")
        for target in targets
    }
    assert reached, "the walker saw the room's imports"
    assert {t for t in reached if not t.startswith(allowed)} == {"clearance.errors"}
