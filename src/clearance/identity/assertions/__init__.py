"""Identity asserted by someone else: an OpenID Connect for Identity Assurance ID token
(`oidc.py`) or a signed vendor webhook (`webhooks.py`), both mapped to the same asserted facts.
Deciding and recording them, like a document, is the core's (`identity/assertion_cases.py`): a
room only reads and checks, and never imports the core."""

from clearance.identity.assertions.oidc import (
    AssertedDocument,
    AssertedIdentity,
    FileKeys,
    IssuerConfig,
    UrlKeys,
    key_source,
    verify_id_token,
)
from clearance.identity.assertions.webhooks import VendorConfig, WebhookEvent, parse_event

__all__ = [
    "AssertedDocument",
    "AssertedIdentity",
    "FileKeys",
    "IssuerConfig",
    "UrlKeys",
    "VendorConfig",
    "WebhookEvent",
    "key_source",
    "parse_event",
    "verify_id_token",
]
