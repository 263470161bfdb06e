"""The OpenID Provider as Clearance's client sees it: discovery, the authorization request, the
code exchange, and ID token validation.

Authlib builds the protocol messages (the authorization URL, the token request, the PKCE
challenge) and checks the ID token's claims; joserfc, the JOSE library Authlib is built on,
verifies its signature against the provider's JWKS. The three HTTP calls (discovery, JWKS, token)
go through aiohttp, the client the gateway already runs on.

- Discovery (OpenID Connect Discovery 1.0 §4): `ISSUER/.well-known/openid-configuration`, whose
  `issuer` must be the configured one exactly (§4.3), cached for an hour.
- Every endpoint is https, or http on the loopback (tests, a provider on the same host):
  RFC 6749 §3.1 and §3.2 require TLS.
- PKCE (RFC 7636): a fresh `code_verifier` of 43+ characters (§4.1), sent as its S256
  `code_challenge` (§4.2, §4.3) and then with the code (§4.5); a provider that announces its
  methods without S256 is refused.
- The ID token (OpenID Connect Core 1.0 §3.1.3.7) is validated in `verify_id_token`.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from clearance.config import SsoSettings
from clearance.errors import ConfigError, UnavailableError, VerificationError
from clearance.identity.assertions.oidc import ASYMMETRIC

DISCOVERY_SECONDS = 3600
LEEWAY_SECONDS = 60  # clock skew allowed on exp and iat
TIMEOUT = aiohttp.ClientTimeout(total=10)


def secure_url(url: str) -> bool:
    """https, or http to the loopback (RFC 8252 §7.3 allows it for a local listener)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Metadata:
    """What Clearance uses of the provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]

    @classmethod
    def parse(cls, document: object, issuer: str) -> Metadata:
        if not isinstance(document, dict):
            raise UnavailableError("the identity provider's discovery document is not an object")
        # Discovery §4.3: the issuer in the document is exactly the one asked for.
        if document.get("issuer") != issuer:
            raise ConfigError(
                f"the identity provider calls itself {document.get('issuer')!r}, not {issuer!r}"
            )
        urls = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            url = document.get(name)
            if not isinstance(url, str) or not secure_url(url):
                raise ConfigError(f"the identity provider's {name} is missing or not https")
            urls[name] = url
        methods = document.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise ConfigError("the identity provider does not support PKCE with S256")
        # §3.1.3.7 step 7: the alg the client expects; RS256 when the provider names none.
        offered = document.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = tuple(a for a in offered if a in ASYMMETRIC)
        if not algorithms:
            raise ConfigError("the identity provider signs ID tokens with no asymmetric algorithm")
        return cls(issuer, algorithms=algorithms, **urls)


class OpenIdProvider:
    """One configured provider; its discovery document and keys, fetched when first needed."""

    def __init__(self, settings: SsoSettings, client_secret: str | None, redirect_uri: str) -> None:
        if not secure_url(settings.issuer):
            raise ConfigError("[sso] issuer must be an https URL (http only on the loopback)")
        self.settings = settings
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self._metadata: Metadata | None = None
        self._fetched = 0.0
        self._keys: KeySet | None = None

    async def metadata(self) -> Metadata:
        if self._metadata is None or time.monotonic() - self._fetched > DISCOVERY_SECONDS:
            url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
            self._metadata = Metadata.parse(await _get_json(url), self.settings.issuer)
            self._fetched = time.monotonic()
            self._keys = None
        return self._metadata

    async def authorization_url(self, state: str, nonce: str, verifier: str) -> str:
        """The authentication request (Core §3.1.2.1) with PKCE (RFC 7636 §4.3)."""
        meta = await self.metadata()
        uri: str = prepare_grant_uri(
            meta.authorization_endpoint,
            client_id=self.settings.client_id,
            response_type="code",
            redirect_uri=self.redirect_uri,
            scope=" ".join(self.settings.scopes),
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        return uri

    async def exchange(self, code: str, verifier: str) -> dict[str, Any]:
        """The token request (Core §3.1.3.1, RFC 6749 §4.1.3) with the verifier (RFC 7636 §4.5);
        the client authenticates with HTTP Basic when it has a secret (RFC 6749 §2.3.1)."""
        meta = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier,
        }
        headers = {"accept": "application/json"}
        if self.client_secret:
            # RFC 6749 §2.3.1: each part form-urlencoded before the Basic encoding.
            pair = f"{quote(self.settings.client_id, safe='')}:{quote(self.client_secret, safe='')}"
            headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = self.settings.client_id
        try:
            async with (
                aiohttp.ClientSession(timeout=TIMEOUT) as session,
                session.post(meta.token_endpoint, data=form, headers=headers) as reply,
            ):
                body = await reply.read()
                status = reply.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UnavailableError("the identity provider could not be reached") from exc
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if status != 200 or not isinstance(answer, dict):
            error = answer.get("error") if isinstance(answer, dict) else None
            raise VerificationError(
                f"the identity provider refused the sign-in code ({error or status})"
            )
        return answer

    async def verify_id_token(self, token: object, nonce: str) -> dict[str, Any]:
        """OpenID Connect Core 1.0 §3.1.3.7, each step:

        1. (encrypted ID tokens: none are asked for, so a JWE is refused as malformed)
        2. `iss` is the discovered issuer exactly;
        3. `aud` holds our client_id;
        4-5. with several audiences, `azp` is present and is our client_id;
        6-8. the signature verifies with a key of the provider's JWKS, under an asymmetric
             algorithm the provider announced (never `none` or HS*: RFC 8725 §3.1);
        9. `exp` is in the future (60 s of leeway for clock skew);
        10. `iat` is a number (and not in the future, same leeway);
        11. `nonce` is the one this browser's request sent (Authlib compares it).
        """
        if not isinstance(token, str) or token.count(".") != 2:
            raise VerificationError("the identity provider sent no signed ID token")
        meta = await self.metadata()
        try:
            decoded = jwt.decode(token, await self._key_set(refresh=False), list(meta.algorithms))
        except InvalidKeyIdError:
            # The provider rotated its keys since we fetched them: once more, afresh.
            try:
                keys = await self._key_set(refresh=True)
                decoded = jwt.decode(token, keys, list(meta.algorithms))
            except JoseError as exc:
                raise VerificationError(
                    f"the ID token's signature was refused ({exc.error})"
                ) from None
        except JoseError as exc:
            raise VerificationError(f"the ID token's signature was refused ({exc.error})") from None
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            options={
                "iss": {"essential": True, "value": meta.issuer},
                "aud": {"essential": True, "value": self.settings.client_id},
                "sub": {"essential": True},
                "exp": {"essential": True},
                "iat": {"essential": True},
                "nonce": {"essential": True},
            },
            params={"nonce": nonce, "client_id": self.settings.client_id},
        )
        try:
            claims.validate(leeway=LEEWAY_SECONDS)
        except JoseError as exc:
            raise VerificationError(
                f"the ID token was refused ({exc.error}: {exc.description})"
            ) from None
        iat = claims.get("iat")
        if not isinstance(iat, int | float) or iat > time.time() + LEEWAY_SECONDS:
            raise VerificationError("the ID token was refused (it is issued in the future)")
        return dict(claims)

    async def _key_set(self, *, refresh: bool) -> KeySet:
        if self._keys is None or refresh:
            meta = await self.metadata()
            document = await _get_json(meta.jwks_uri)
            try:
                self._keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise UnavailableError("the identity provider's keys could not be read") from exc
        return self._keys


async def _get_json(url: str) -> object:
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
            session.get(url, headers={"accept": "application/json"}) as reply,
        ):
            if reply.status != 200:
                raise UnavailableError(f"the identity provider answered {reply.status} for {url}")
            return json.loads(await reply.read())
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise UnavailableError(f"the identity provider could not be reached ({url})") from exc
