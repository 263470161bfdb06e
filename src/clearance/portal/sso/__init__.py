"""Operator single sign-on by OpenID Connect (docs/console.md): provider.py (the OpenID Provider
as our client sees it), service.py (pending sign-ins, linked identities), views.py (the routes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from clearance.config import Settings
from clearance.errors import ConfigError

if TYPE_CHECKING:
    from clearance.portal.sso.provider import OpenIdProvider

CALLBACK = "/signin/sso/callback"


def provider_for(settings: Settings, environ: Mapping[str, str]) -> OpenIdProvider | None:
    """The configured provider, or None without `[sso] issuer`. The client secret is read from
    the variable `[sso] client_secret_env` names, here, once, at start-up."""
    sso = settings.sso
    if not sso.enabled:
        return None
    if not sso.client_id:
        raise ConfigError("[sso] client_id is required with [sso] issuer")
    secret = None
    if sso.client_secret_env:
        secret = environ.get(sso.client_secret_env)
        if not secret:
            raise ConfigError(f"[sso] client_secret_env: ${sso.client_secret_env} is not set")
    redirect_uri = settings.gateway.portal_url.rstrip("/") + CALLBACK
    # Authlib and joserfc load only where SSO is configured: every other worker is spared them.
    from clearance.portal.sso.provider import OpenIdProvider

    return OpenIdProvider(sso, secret, redirect_uri)


__all__ = ["CALLBACK", "provider_for"]
