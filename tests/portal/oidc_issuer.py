"""A small OpenID Provider for the tests, built on Authlib's server side and served over real
HTTP on the loopback (`serve_in_thread`).

What it implements, as a provider Clearance meets in production would:

- discovery (OpenID Connect Discovery 1.0 §4) at /.well-known/openid-configuration, announcing
  S256 as its only PKCE method;
- the authorization endpoint (Core §3.1.2; Authlib's AuthorizationCodeGrant with the OpenIDCode
  extension), which signs in whoever the test named with `login_as` (no login form: the tests
  are about the relying party);
- the token endpoint (Core §3.1.3; client_secret_basic), refusing a code without its PKCE
  verifier or with the wrong one (RFC 7636 §4.6, Authlib's CodeChallenge), and a code used twice;
- the JWKS (RFC 7517) of its RS256 signing key.

Test knobs: `claims` overrides the ID token's claims (a wrong nonce, audience, issuer, expiry),
`foreign_key` signs with a key that is not in the JWKS, `advertise` edits the discovery document.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clearance.net.serving import serve_in_thread

CLIENT_ID = "clearance-console"
CLIENT_SECRET = "correct horse battery staple"


@dataclass
class Person:
    sub: str
    email: str
    name: str
    groups: list[str] | None  # None: no groups claim in the ID token
    email_verified: bool = True


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    person: Person
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class Client(ClientMixin):  # type: ignore[misc]
    def __init__(self, redirect_uri: str) -> None:
        self.redirect_uri = redirect_uri

    def get_client_id(self) -> str:
        return CLIENT_ID

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str) -> str:
        allowed = {"openid", "email", "profile", "groups"}
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, CLIENT_SECRET)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


class StrictChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE for every client, S256 only (RFC 7636 §4.2; OAuth 2.0 Security BCP, RFC 9700 §2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with S256 is required")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        super().validate_code_verifier(grant, result)


class Request2(OAuth2Request):  # type: ignore[misc]
    """An Authlib request from what Starlette read (Authlib's own integrations are sync)."""

    def __init__(self, method: str, url: str, headers: Headers, data: dict[str, str]) -> None:
        super().__init__(method, url, headers=headers)
        self.payload = BasicOAuth2Payload(data)
        self._data = data

    @property
    def args(self) -> dict[str, str]:
        return self._data

    @property
    def form(self) -> dict[str, str]:
        return self._data


class Issuer:
    def __init__(self) -> None:
        self.url = ""
        self.redirect_uri = ""
        self.key = RSAKey.generate_key(2048, parameters={"kid": "issuer-1", "use": "sig"})
        self.foreign_key: RSAKey | None = None
        self.login_as: Person | None = None
        self.claims: dict[str, Any] = {}  # merged over the ID token's claims
        self.advertise: dict[str, Any] = {}  # merged over the discovery document
        self.codes: dict[str, Code] = {}
        self.nonces: set[str] = set()
        self.token_requests: list[dict[str, str]] = []
        self.authorization_requests: list[dict[str, str]] = []
        self.server = self._server()

    # -- Authlib's server, wired to this object --------------------------------------------------

    def _server(self) -> AuthorizationServer:
        issuer = self

        class Server(AuthorizationServer):  # type: ignore[misc]
            def query_client(self, client_id: str) -> Client | None:
                return Client(issuer.redirect_uri) if client_id == CLIENT_ID else None

            def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
                pass

            def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
                return request  # built from Starlette's request already (Request2)

            def handle_response(
                self, status: int, body: Any, headers: list[tuple[str, str]]
            ) -> Response:
                if isinstance(body, dict):
                    return JSONResponse(body, status_code=status, headers=dict(headers))
                return Response(body, status_code=status, headers=dict(headers))

            def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
                pass

        class Grant(AuthorizationCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic"]

            def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
                data = request.payload.data
                issuer.codes[code] = Code(
                    code=code,
                    client_id=CLIENT_ID,
                    redirect_uri=data.get("redirect_uri", ""),
                    scope=data.get("scope", ""),
                    person=request.user,
                    nonce=data.get("nonce"),
                    code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method"),
                )

            def query_authorization_code(self, code: str, client: Client) -> Code | None:
                return issuer.codes.get(code)

            def delete_authorization_code(self, authorization_code: Code) -> None:
                issuer.codes.pop(authorization_code.code, None)  # used once

            def authenticate_user(self, authorization_code: Code) -> Person:
                return authorization_code.person

        class OpenId(OpenIDCode):  # type: ignore[misc]
            def resolve_client_private_key(self, client: Client) -> Any:
                return issuer.foreign_key or issuer.key

            def get_client_claims(self, client: Client) -> dict[str, Any]:
                return {"iss": issuer.url, "aud": [CLIENT_ID]}

            def get_client_algorithm(self, client: Client) -> str:
                return "RS256"

            def get_encode_header(self, client: Client) -> dict[str, str]:
                return {"alg": "RS256", "kid": "issuer-1"}

            def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
                return nonce in issuer.nonces

            def generate_user_info(self, user: Person, scope: str) -> UserInfo:
                info = UserInfo(
                    sub=user.sub,
                    email=user.email,
                    email_verified=user.email_verified,
                    name=user.name,
                )
                if user.groups is not None:
                    info["groups"] = user.groups
                info.update(issuer.claims)  # merged last: it may replace nonce, aud, iss, exp
                return info

        server = Server()
        server.register_token_generator(
            "default",
            BearerTokenGenerator(lambda *a, **k: secrets.token_urlsafe(32), None),
        )
        server.register_grant(Grant, [StrictChallenge(required=True), OpenId(require_nonce=True)])
        return server

    # -- HTTP ----------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
            ]
        )

    async def discovery(self, _request: Request) -> Response:
        document = {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "scopes_supported": ["openid", "email", "profile", "groups"],
            **self.advertise,
        }
        return JSONResponse(document)

    async def jwks(self, _request: Request) -> Response:
        return JSONResponse(KeySet([self.key]).as_dict(private=False))

    async def authorize(self, request: Request) -> Response:
        data = dict(request.query_params)
        self.authorization_requests.append(data)
        oauth = Request2("GET", str(request.url), request.headers, data)
        try:
            grant = self.server.get_consent_grant(oauth, end_user=self.login_as)
        except OAuth2Error as error:
            return JSONResponse({"error": error.error, "detail": error.description}, 400)
        response = self.server.create_authorization_response(
            oauth, grant_user=self.login_as, grant=grant
        )
        if data.get("nonce"):
            self.nonces.add(data["nonce"])
        assert isinstance(response, Response)
        return response

    async def token(self, request: Request) -> Response:
        data = {k: str(v) for k, v in (await request.form()).items()}
        self.token_requests.append(data)
        oauth = Request2("POST", str(request.url), request.headers, data)
        response = self.server.create_token_response(oauth)
        assert isinstance(response, Response)
        return response


@contextmanager
def running_issuer() -> Iterator[Issuer]:
    issuer = Issuer()
    with serve_in_thread(issuer.app(), lifespan="off") as url:
        issuer.url = url
        yield issuer
