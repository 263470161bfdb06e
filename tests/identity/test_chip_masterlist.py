"""CSCA master lists (ICAO 9303-12 §8) read from a PEM bundle, PKD-style LDIF and a CMS master
list: the same anchors give the same digest in every form; what cannot serve as a CSCA is left
out with its reason; hostile files are refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from clearance.errors import ChipError, ChipFormatError, ChipSignatureError, ChipUntrusted
from clearance.identity.chip import MasterListFormat, masterlist, passive_authentication
from tests.fixtures.identity import chip
from tests.fixtures.identity.chip import NOW


@pytest.fixture(scope="module")
def anchors() -> list[chip.Authority]:
    return [chip.default_csca(), chip.csca(key=chip.ec_key("secp384r1", 1), cn="CSCA Two")]


def test_pem_ldif_and_cms_give_one_digest(anchors: list[chip.Authority]) -> None:
    certs = [a.cert for a in anchors]
    cms = chip.master_list_cms(certs, anchors[0])
    from_pem = masterlist.parse(chip.pem(certs))
    from_cms = masterlist.parse(cms)
    from_ldif = masterlist.parse(chip.ldif(cms))
    assert from_pem.format is MasterListFormat.PEM
    assert from_cms.format is MasterListFormat.CMS
    assert from_ldif.format is MasterListFormat.LDIF
    assert from_pem.digest == from_cms.digest == from_ldif.digest
    assert len(from_cms.certificates) == 2
    assert from_cms.signers == ("CN=CSCA Test,O=Test State,C=NL",)
    single = masterlist.parse(from_pem.der()[0])
    assert single.format is MasterListFormat.DER
    stored = masterlist.from_der(from_pem.der(), from_pem.format)
    assert stored.digest == from_pem.digest
    p = chip.passport()
    assert passive_authentication(p.dg1, p.dg2, p.sod, cscas=list(stored.certificates), at=NOW)


def test_ldif_certificates_beside_the_master_list_are_read(anchors: list[chip.Authority]) -> None:
    cms = chip.master_list_cms([anchors[0].cert], anchors[0])
    both = masterlist.parse(chip.ldif(cms, [anchors[1].cert]))
    assert len(both.certificates) == 2


def test_what_is_no_csca_is_left_out_with_its_reason(anchors: list[chip.Authority]) -> None:
    ds = chip.document_signer(anchors[0])
    absurd = chip.csca(
        key=chip.ec_key("secp256r1", 9), cn="CSCA Forever", not_after=NOW.replace(year=9999)
    )
    listed = masterlist.parse(chip.pem([anchors[0].cert, ds.cert, absurd.cert, anchors[0].cert]))
    assert len(listed.certificates) == 1  # the duplicate is kept once
    assert len(listed.skipped) == 2
    assert "not a CA" in listed.skipped[0]
    assert "absurd validity" in listed.skipped[1]


def test_an_expired_csca_is_kept_and_refused_at_verification() -> None:
    old = chip.csca(
        key=chip.rsa_key(3072, 8),
        cn="CSCA Old",
        not_before=NOW - timedelta(days=4000),
        not_after=NOW - timedelta(days=2),
    )
    assert len(masterlist.parse(chip.pem([old.cert])).certificates) == 1


def test_a_tampered_cms_master_list_is_refused(anchors: list[chip.Authority]) -> None:
    cms = chip.master_list_cms([a.cert for a in anchors], anchors[0])
    # flip a byte inside the second certificate (the signed content)
    at = cms.find(anchors[1].cert.public_bytes(Encoding.DER)[40:60])
    tampered = cms[:at] + bytes([cms[at] ^ 1]) + cms[at + 1 :]
    with pytest.raises(ChipSignatureError):
        masterlist.parse(tampered)


def test_a_master_list_signed_by_an_outsider_is_refused(anchors: list[chip.Authority]) -> None:
    outsider = chip.csca(key=chip.rsa_key(3072, 10), cn="CSCA Outsider")
    with pytest.raises(ChipUntrusted) as caught:
        masterlist.parse(chip.master_list_cms([anchors[0].cert], outsider))
    assert caught.value.reason == "ml_signer"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello",
        b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        b"version: 1\n\ndn: c=NL\nCscaMasterListData:: AAAA\n",
        b"\x30\x84\xff\xff\xff\xff",
        b"\x30\x03\x02\x01\x00",
    ],
)
def test_junk_is_refused(data: bytes) -> None:
    with pytest.raises(ChipError):
        masterlist.parse(data)


def test_a_huge_file_is_refused_before_parsing() -> None:
    with pytest.raises(ChipFormatError) as caught:
        masterlist.parse(b"#" * (masterlist.MAX_BYTES + 1))
    assert caught.value.reason == "too_large"
