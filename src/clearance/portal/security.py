"""What every portal response and request goes through: headers, cookies, body limit, CSRF.

- `PortalGuard` (ASGI middleware): caps the request body, gives every browser a nonce cookie
  (the anchor for sign-in links and anonymous CSRF tokens), and adds the security headers:
  a strict Content-Security-Policy with no inline script (W3C CSP Level 3), `nosniff`
  (Fetch §3.5.2), `Referrer-Policy: no-referrer` (the sign-in link is in the URL), no framing,
  and `Cache-Control: no-store` on pages (they hold personal data and one-time secrets).
- `csrf_token` / `check_csrf`: a synchroniser token, HMAC of the browser and session cookies
  under a server key, checked on every POST with the Origin header (OWASP CSRF cheat sheet).
- Cookies use the `__Host-` prefix (RFC 6265bis §4.1.3.2: Secure, Path=/, no Domain), HttpOnly
  and SameSite=Lax.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http.cookies import SimpleCookie

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearance.errors import PayloadTooLarge, PermissionDenied

SESSION_COOKIE = "__Host-clearance_session"
BROWSER_COOKIE = "__Host-clearance_browser"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(self), microphone=(), geolocation=()",
}


def cookie_header(name: str, value: str, *, max_age: int | None = None) -> str:
    """A Set-Cookie value: __Host- prefix rules, HttpOnly, SameSite=Lax."""
    parts = [f"{name}={value}", "Path=/", "Secure", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


def cookies_of(scope: Scope) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except ValueError:  # http.cookies.CookieError: a malformed header is no cookie
                continue
    return {k: m.value for k, m in jar.items()}


class PortalGuard:
    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        new_browser = None
        if not cookies_of(scope).get(BROWSER_COOKIE):
            new_browser = secrets.token_urlsafe(24)
            # Let the endpoint see it as if the browser had sent it.
            extra = (b"cookie", f"{BROWSER_COOKIE}={new_browser}".encode())
            scope = {**scope, "headers": [*scope["headers"], extra]}
        static = "/static/" in scope["path"]

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                if not static:
                    headers["cache-control"] = "no-store"
                if new_browser is not None:
                    headers.append("set-cookie", cookie_header(BROWSER_COOKIE, new_browser))
            await send(message)

        await self.app(scope, self._limited(scope, receive), send_guarded)

    def _limited(self, scope: Scope, receive: Receive) -> Receive:
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            too_big = PayloadTooLarge(f"the upload is over {self.max_body // (1024 * 1024)} MiB")

            async def refuse() -> Message:
                raise too_big

            return refuse
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise PayloadTooLarge(f"the upload is over {self.max_body // (1024 * 1024)} MiB")
            return message

        return counted


class Csrf:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def token(self, request: Request) -> str:
        browser = request.cookies.get(BROWSER_COOKIE, "")
        session = request.cookies.get(SESSION_COOKIE, "")
        material = f"{browser}\0{session}".encode()
        return hmac.new(self._key, material, hashlib.sha256).hexdigest()

    def check(self, request: Request, submitted: str | None) -> None:
        # Fetch Metadata (W3C) where the browser sends it; else Origin. Under no-referrer a
        # browser sends `Origin: null` on our own forms, so "null" proves nothing either way.
        site = request.headers.get("sec-fetch-site")
        origin = request.headers.get("origin")
        if site is not None and site not in ("same-origin", "none"):
            raise PermissionDenied("this form was sent from another site")
        if origin not in (None, "null") and origin.split("://", 1)[-1] != request.headers.get(
            "host"
        ):
            raise PermissionDenied("this form was sent from another site")
        given = submitted or request.headers.get(CSRF_HEADER) or ""
        if not secrets.compare_digest(given, self.token(request)):
            raise PermissionDenied(
                "this form has expired or did not come from this site; reload the page and retry"
            )
