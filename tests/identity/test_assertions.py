"""OIDC4IA ID tokens and vendor webhooks: real keys made here, real signatures, real refusals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from sqlalchemy.engine import Engine

from clearance.audit.service import AuditLog
from clearance.errors import ConfigError, Conflict, VerificationError
from clearance.identity import assertion_cases
from clearance.identity.assertions import FileKeys, IssuerConfig, verify_id_token, webhooks
from clearance.identity.models import Outcome
from clearance.identity.vault import EvidenceVault
from clearance.principals import service as principals
from clearance.principals.models import Method, UsPerson

ISSUER = "https://idp.example"
CLIENT = "clearance-test"
NONCE = "n-0S6_WzA2Mj"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def verified_claims(nationalities: list[str], framework: str = "uk_tfida") -> dict[str, Any]:
    """Shaped like OIDC4IA 1.0 §5 (document evidence, 1.0 final field names)."""
    return {
        "verification": {
            "trust_framework": framework,
            "time": "2025-01-10T10:00:00Z",
            "evidence": [
                {
                    "type": "document",
                    "method": "pipp",
                    "document_details": {
                        "type": "passport",
                        "document_number": "568194734",
                        "issuer": {"country_code": "USA"},
                        "date_of_expiry": "2033-04-15",
                    },
                }
            ],
        },
        "claims": {"given_name": "Anna", "family_name": "Eriksson", "nationalities": nationalities},
    }


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "sub": "248289761001",
        "aud": CLIENT,
        "nonce": NONCE,
        "iat": now,
        "exp": now + 300,
        "verified_claims": verified_claims(["USA"]),
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def token(
    payload: dict[str, Any], key: Any = RSA_KEY, alg: str = "RS256", kid: str = "rsa-1"
) -> str:
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


@pytest.fixture(scope="module")
def jwks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
    ec_jwk = json.loads(ECAlgorithm.to_jwk(EC_KEY.public_key()))
    rsa_jwk.update(kid="rsa-1", use="sig", alg="RS256")
    ec_jwk.update(kid="ec-1", use="sig", alg="ES256")
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [rsa_jwk, ec_jwk]}))
    return path


@pytest.fixture(scope="module")
def issuer(jwks_file: Path) -> IssuerConfig:
    raw = {"issuer": ISSUER, "audience": CLIENT, "jwks_file": jwks_file.name}
    return IssuerConfig.from_mapping({**raw, "trust_frameworks": ["uk_tfida"]}, jwks_file.parent)


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")  # RFC 7515 §2 base64url, no padding


def check(tok: str, config: IssuerConfig, nonce: str = NONCE) -> Any:
    assert config.jwks_file is not None
    return verify_id_token(tok, config, nonce=nonce, keys=FileKeys(config.jwks_file))


def test_a_token_from_the_issuer_gives_nationality_and_us_person(issuer: IssuerConfig) -> None:
    asserted = check(token(claims()), issuer)
    assert asserted.nationalities == ("US",)  # ICAO "USA" mapped to ISO 3166-1 alpha-2
    assert asserted.us_person is UsPerson.CITIZEN
    assert asserted.trust_framework == "uk_tfida"
    assert asserted.expires is not None and asserted.expires.isoformat() == "2033-04-15"


def test_ec_signed_token_and_icao_codes_beyond_iso(issuer: IssuerConfig) -> None:
    payload = claims(verified_claims=verified_claims(["D", "FR"]))
    asserted = check(token(payload, EC_KEY, "ES256", "ec-1"), issuer)
    assert asserted.nationalities == ("DE", "FR")  # 9303-3: Germany is "D"
    assert asserted.us_person is UsPerson.NONE


def test_us_residence_permit_evidence_means_lpr(issuer: IssuerConfig) -> None:
    vc = verified_claims(["MEX"])
    vc["verification"]["evidence"][0]["document_details"]["type"] = "residence_permit"
    asserted = check(token(claims(verified_claims=vc)), issuer)
    assert (asserted.nationalities, asserted.us_person) == (("MX",), UsPerson.LPR)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda: token(claims(), OTHER_KEY), id="forged-signature"),
        pytest.param(lambda: token(claims(iss="https://evil.example")), id="wrong-issuer"),
        pytest.param(lambda: token(claims(aud="someone-else")), id="wrong-audience"),
        pytest.param(
            lambda: token(claims(aud=[CLIENT, "someone-else"])), id="several-audiences-no-azp"
        ),
        pytest.param(
            lambda: token(claims(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)),
            id="expired",
        ),
        pytest.param(lambda: token(claims(nonce="replayed-nonce")), id="bad-nonce"),
        pytest.param(lambda: token(claims(nonce=None)), id="no-nonce"),
        pytest.param(lambda: token(claims(), EC_KEY, "ES256", "rsa-1"), id="key-of-other-type"),
        pytest.param(lambda: jwt.encode(claims(), None, algorithm="none"), id="alg-none"),
        pytest.param(
            lambda: token(claims(verified_claims=verified_claims(["USA"], "made_up"))),
            id="untrusted-framework",
        ),
        pytest.param(lambda: token(claims(verified_claims=None)), id="no-verified-claims"),
        pytest.param(lambda: "not.a.token", id="garbage"),
    ],
)
def test_refused_tokens(issuer: IssuerConfig, bad: Any) -> None:
    with pytest.raises(VerificationError):
        check(bad(), issuer)


def test_hs256_signed_with_the_public_key_is_refused(issuer: IssuerConfig) -> None:
    """Algorithm confusion (RFC 8725 §2.1): the public JWKS used as an HMAC secret."""
    secret = RSA_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    header = {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}
    signing_input = b".".join(_b64(json.dumps(part).encode()) for part in (header, claims()))
    mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
    forged = (signing_input + b"." + _b64(mac)).decode()
    with pytest.raises(VerificationError):
        check(forged, issuer)


@pytest.mark.parametrize(
    "raw",
    [
        {"issuer": ISSUER, "audience": CLIENT, "jwks_file": "j.json", "algorithms": ["HS256"]},
        {"issuer": ISSUER, "audience": CLIENT, "jwks_url": "http://idp.example/jwks"},
        {"issuer": ISSUER, "audience": CLIENT},
        {"issuer": ISSUER, "jwks_file": "j.json"},
    ],
    ids=["shared-secret-alg", "plain-http", "no-keys", "no-audience"],
)
def test_unsafe_issuer_configuration_is_refused(raw: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        IssuerConfig.from_mapping(raw, tmp_path)


# -- webhooks ----------------------------------------------------------------------------


@pytest.fixture
def vendor(tmp_path: Path) -> webhooks.VendorConfig:
    (tmp_path / "acme.secret").write_text("s" * 48)
    return webhooks.VendorConfig.from_mapping(
        {"name": "acme-kyc", "secret_file": "acme.secret"}, tmp_path
    )


def body(reference: str, status: str = "approved", event: str = "evt_1") -> bytes:
    payload = {"id": event, "reference": reference, "status": status}
    if status == "approved":
        payload["verified_claims"] = verified_claims(["USA"])  # type: ignore[assignment]
    return json.dumps(payload).encode()


def test_signed_webhook_maps_to_the_same_facts(vendor: webhooks.VendorConfig) -> None:
    raw = body("sub_abc")
    event = webhooks.parse_event(vendor, webhooks.sign(vendor.secret, int(time.time()), raw), raw)
    assert (event.id, event.reference, event.status) == ("evt_1", "sub_abc", "approved")
    assert event.identity is not None
    assert (event.identity.nationalities, event.identity.us_person) == (("US",), UsPerson.CITIZEN)


def test_refused_webhooks(vendor: webhooks.VendorConfig) -> None:
    raw, now = body("sub_abc"), int(time.time())
    header = webhooks.sign(vendor.secret, now, raw)
    with pytest.raises(VerificationError):  # one byte of the body changed
        webhooks.parse_event(vendor, header, raw.replace(b"USA", b"USB"))
    with pytest.raises(VerificationError):  # an old delivery replayed
        webhooks.parse_event(vendor, webhooks.sign(vendor.secret, now - 301, raw), raw)
    with pytest.raises(VerificationError):  # signed with another secret
        webhooks.parse_event(vendor, webhooks.sign(b"x" * 48, now, raw), raw)
    with pytest.raises(VerificationError):
        webhooks.parse_event(vendor, "v1=deadbeef", raw)


# -- decisions on both databases ---------------------------------------------------------


def test_token_clears_a_user_and_a_forged_one_does_not(
    engine: Engine, audit: AuditLog, issuer: IssuerConfig, tmp_path: Path
) -> None:
    vault = EvidenceVault(tmp_path / "evidence", b"m" * 32)
    with engine.begin() as conn:
        good = principals.add_user(conn, "good@example.com").id
        bad = principals.add_user(conn, "bad@example.com").id
    tok = token(claims())
    case = assertion_cases.accept_assertion(
        engine, vault, audit, good, check(tok, issuer), carrier=tok.encode(), max_age_days=365
    )
    assert case.status is Outcome.VERIFIED and case.audit_index is not None
    with pytest.raises(VerificationError):
        check(token(claims(), OTHER_KEY), issuer)
    with engine.connect() as conn:
        identity = principals.get_user_by_id(conn, good).identity
        assert principals.get_user_by_id(conn, bad).identity is None
    assert identity is not None
    assert (identity.us_person, identity.method, identity.source) == (
        UsPerson.CITIZEN,
        Method.ASSERTION,
        "assertion",
    )
    # The asserted passport now backs this account and no other.
    again = assertion_cases.accept_assertion(
        engine, vault, audit, bad, check(tok, issuer), carrier=tok.encode(), max_age_days=365
    )
    assert (again.status, again.reasons) == (Outcome.REJECTED, ("document_reused",))


def test_webhook_events_are_acted_on_once(
    engine: Engine, audit: AuditLog, vendor: webhooks.VendorConfig, tmp_path: Path
) -> None:
    vault = EvidenceVault(tmp_path / "evidence", b"m" * 32)
    with engine.begin() as conn:
        user = principals.add_user(conn, "hook@example.com")
    raw = body(user.subject_id)
    header = webhooks.sign(vendor.secret, int(time.time()), raw)
    event = webhooks.parse_event(vendor, header, raw)
    case = assertion_cases.accept_webhook(engine, vault, audit, event, body=raw, max_age_days=365)
    assert case.status is Outcome.VERIFIED
    with pytest.raises(Conflict):
        assertion_cases.accept_webhook(engine, vault, audit, event, body=raw, max_age_days=365)
    declined_raw = body(user.subject_id, status="declined", event="evt_2")
    declined = webhooks.parse_event(
        vendor, webhooks.sign(vendor.secret, int(time.time()), declined_raw), declined_raw
    )
    case = assertion_cases.accept_webhook(
        engine, vault, audit, declined, body=declined_raw, max_age_days=365
    )
    assert (case.status, case.reasons) == (Outcome.REJECTED, ("vendor_declined",))
