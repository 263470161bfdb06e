"""Identity assertions: OpenID Connect for Identity Assurance 1.0 `verified_claims` in an ID token.

A configured issuer's ID token is accepted only when (OpenID Connect Core 1.0 §3.1.3.7):
the signature verifies with a key from the issuer's JWKS (RFC 7517; file or URL) under an
algorithm on the issuer's allowlist (never `none` or a shared-secret HS*, RFC 8725 §3.1-3.2);
`iss` is the issuer exactly; `aud` holds our client id (and `azp` names us when there are several
audiences); `exp` is in the future; and `nonce` is the one we sent (constant-time compare).

Then `verified_claims` (OIDC4IA §5; an object or an array of them) is mapped to facts: the
`verification.trust_framework` must be one the issuer is trusted for; `claims.nationalities`
are ICAO 9303 codes (3 letters; 2-letter codes allowed "for compatibility", OIDC4IA §4.1) mapped
to ISO 3166-1 alpha-2 through the 9303-3 code table; the evidence documents give an expiry and
the issuing country + number (for the one-document-one-account rule).

PyJWT (with `cryptography`) does the JOSE work: it is maintained, typed, small, already a
dependency of the OpenAI/Anthropic tooling here, and its `algorithms=` argument is mandatory,
which closes the algorithm-confusion class of bugs (RFC 8725 §2.1). joserfc would do as well;
one JOSE library is enough.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import jwt

from clearance.errors import ConfigError, UnavailableError, UnknownCountryCode, VerificationError
from clearance.identity.mrz import codes
from clearance.principals.countries import ALPHA2
from clearance.principals.models import UsPerson

# RFC 7518 §3.1 asymmetric algorithms only: a token signed with a shared secret could be forged
# by anyone holding the JWKS, and `none` by anyone at all (RFC 8725 §2.1).
ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# OIDC4IA evidence types: "document" (1.0 final) and "id_document" (implementer's drafts).
_DOCUMENT_EVIDENCE = frozenset({"document", "id_document"})


@dataclass(frozen=True, slots=True)
class IssuerConfig:
    issuer: str
    audience: str  # our client id at that issuer
    jwks_file: Path | None
    jwks_url: str | None
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    trust_frameworks: tuple[str, ...] = ()  # empty: any framework the issuer asserts
    leeway_seconds: int = 60

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], base: Path) -> IssuerConfig:
        try:
            issuer, audience = str(raw["issuer"]), str(raw["audience"])
        except KeyError as exc:
            raise ConfigError(f"[[identity.issuers]] needs {exc.args[0]!r}") from None
        algorithms = tuple(str(a) for a in raw.get("algorithms", ("RS256", "ES256")))
        if not algorithms or not set(algorithms) <= ASYMMETRIC:
            raise ConfigError(f"issuer {issuer}: algorithms must be among {sorted(ASYMMETRIC)}")
        jwks_file = raw.get("jwks_file")
        jwks_url = raw.get("jwks_url")
        if (jwks_file is None) == (jwks_url is None):
            raise ConfigError(f"issuer {issuer}: give exactly one of jwks_file and jwks_url")
        if jwks_url is not None and not str(jwks_url).startswith("https://"):
            raise ConfigError(f"issuer {issuer}: jwks_url must be https")
        return cls(
            issuer=issuer,
            audience=audience,
            jwks_file=None if jwks_file is None else (base / str(jwks_file)).resolve(),
            jwks_url=None if jwks_url is None else str(jwks_url),
            algorithms=algorithms,
            trust_frameworks=tuple(str(t) for t in raw.get("trust_frameworks", ())),
            leeway_seconds=int(raw.get("leeway_seconds", 60)),
        )


@dataclass(frozen=True, slots=True)
class AssertedDocument:
    type: str  # passport | idcard | residence_permit ... (OIDC4IA predefined values)
    country: str | None  # ISO 3166-1 alpha-2 of the issuer, where it maps
    number: str | None
    expiry: date | None


@dataclass(frozen=True, slots=True)
class AssertedIdentity:
    """What a trusted source asserts, in Clearance's terms."""

    source: str  # the issuer URL or the vendor name
    trust_framework: str
    nationalities: tuple[str, ...]  # ISO 3166-1 alpha-2, sorted
    us_person: UsPerson
    documents: tuple[AssertedDocument, ...]
    subject: str  # the source's identifier for the person (`sub`, or the vendor's reference)

    @property
    def expires(self) -> date | None:
        """The earliest expiry among the evidence documents (None: the configured maximum)."""
        dates = [d.expiry for d in self.documents if d.expiry is not None]
        return min(dates) if dates else None


class KeySource(Protocol):
    def key_for(self, token: str) -> Any: ...


class FileKeys:
    """A JWKS read from a file (RFC 7517 §5); the key is chosen by the token's `kid`."""

    def __init__(self, path: Path) -> None:
        try:
            self._set = jwt.PyJWKSet.from_json(path.read_text(encoding="utf-8"))
        except (OSError, jwt.PyJWKSetError, jwt.PyJWKError, ValueError) as exc:
            raise ConfigError(f"cannot read the JWKS {path}: {exc}") from exc

    def key_for(self, token: str) -> Any:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise VerificationError("the ID token is malformed") from None
        candidates = [k for k in self._set.keys if kid is None or k.key_id == kid]
        if len(candidates) != 1:
            raise VerificationError("no single key in the issuer's JWKS matches the token")
        return candidates[0]


class UrlKeys:
    """A JWKS fetched over HTTPS and cached (PyJWKClient refetches on an unknown `kid`)."""

    def __init__(self, url: str) -> None:
        self._client = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=10)

    def key_for(self, token: str) -> Any:
        try:
            return self._client.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise UnavailableError("the identity provider's keys could not be fetched") from exc
        except jwt.PyJWTError:
            raise VerificationError("no key in the issuer's JWKS matches the token") from None


def key_source(config: IssuerConfig) -> KeySource:
    if config.jwks_file is not None:
        return FileKeys(config.jwks_file)
    assert config.jwks_url is not None  # from_mapping guarantees one of the two
    return UrlKeys(config.jwks_url)


def verify_id_token(
    token: str,
    config: IssuerConfig,
    *,
    nonce: str,
    keys: KeySource,
) -> AssertedIdentity:
    """Check the token (signature, iss, aud, exp, nonce) and map its `verified_claims`."""
    key = keys.key_for(token)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=list(config.algorithms),
            audience=config.audience,
            issuer=config.issuer,
            leeway=config.leeway_seconds,
            options={"require": ["iss", "aud", "exp", "iat", "sub", "nonce"]},
        )
    except jwt.PyJWTError as exc:
        raise VerificationError(f"the ID token was refused: {type(exc).__name__}") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != config.audience:
        raise VerificationError("the ID token has several audiences and is not authorised for us")
    if not hmac.compare_digest(str(claims["nonce"]).encode(), nonce.encode()):
        raise VerificationError("the ID token's nonce is not the one this session sent")
    return map_verified_claims(
        claims.get("verified_claims"),
        source=config.issuer,
        subject=str(claims["sub"]),
        trust_frameworks=config.trust_frameworks,
    )


def nationality(code: object) -> str | None:
    """An ICAO 9303 (3-letter, or 2-letter for compatibility) code as ISO 3166-1 alpha-2."""
    if not isinstance(code, str):
        return None
    value = code.strip().upper()
    if len(value) == 2:
        return value if value in ALPHA2 else None
    try:
        return codes.lookup(value.ljust(3, "<"), role="nationality").alpha2
    except UnknownCountryCode:
        return None


def _document(evidence: Mapping[str, Any]) -> AssertedDocument | None:
    if evidence.get("type") not in _DOCUMENT_EVIDENCE:
        return None
    # 1.0 final: document_details{type, document_number, issuer{country_code}, date_of_expiry};
    # the drafts: document{type, number, issuer{country}, date_of_expiry}.
    details = evidence.get("document_details") or evidence.get("document") or {}
    if not isinstance(details, Mapping):
        raise VerificationError("verified_claims evidence has a malformed document")
    issuer = details.get("issuer") or {}
    country = nationality(issuer.get("country_code") or issuer.get("country"))
    number = details.get("document_number") or details.get("number")
    expiry = details.get("date_of_expiry")
    try:
        expires = date.fromisoformat(expiry) if isinstance(expiry, str) else None
    except ValueError:
        raise VerificationError("verified_claims evidence has a malformed expiry") from None
    return AssertedDocument(
        str(details.get("type", "")), country, str(number) if number else None, expires
    )


def _entries(verified: object) -> Sequence[Mapping[str, Any]]:
    items = verified if isinstance(verified, list) else [verified]
    entries = [i for i in items if isinstance(i, Mapping)]
    if not entries or len(entries) != len(items):
        raise VerificationError("the assertion carries no verified_claims")
    return entries


def map_verified_claims(
    verified: object, *, source: str, subject: str, trust_frameworks: Sequence[str]
) -> AssertedIdentity:
    """OIDC4IA §5 `verified_claims` -> facts; entries under untrusted frameworks are ignored."""
    frameworks: list[str] = []
    nations: set[str] = set()
    documents: list[AssertedDocument] = []
    for entry in _entries(verified):
        verification, claims = entry.get("verification"), entry.get("claims")
        if not isinstance(verification, Mapping) or not isinstance(claims, Mapping):
            raise VerificationError("verified_claims needs verification and claims")
        framework = str(verification.get("trust_framework", ""))
        if not framework or (trust_frameworks and framework not in trust_frameworks):
            continue
        frameworks.append(framework)
        for code in claims.get("nationalities", []) or []:
            if (alpha2 := nationality(code)) is not None:
                nations.add(alpha2)
        for evidence in verification.get("evidence", []) or []:
            if isinstance(evidence, Mapping) and (doc := _document(evidence)) is not None:
                documents.append(doc)
    if not frameworks:
        raise VerificationError(
            "no verified_claims under a trust framework trusted for this source"
        )
    return AssertedIdentity(
        source=source,
        trust_framework=",".join(sorted(set(frameworks))),
        nationalities=tuple(sorted(nations)),
        us_person=asserted_us_person(nations, documents),
        documents=tuple(documents),
        subject=subject,
    )


def asserted_us_person(nations: set[str], documents: Sequence[AssertedDocument]) -> UsPerson:
    """US nationality asserted -> citizen; a US-issued residence permit -> LPR (15 CFR 772.1)."""
    if "US" in nations:
        return UsPerson.CITIZEN
    if any(d.type == "residence_permit" and d.country == "US" for d in documents):
        return UsPerson.LPR
    return UsPerson.NONE
