"""Identity asserted by someone else: an OpenID Connect for Identity Assurance ID token
(`oidc.py`) or a signed vendor webhook (`webhooks.py`), both mapped to the same asserted facts,
then decided and recorded like a document (`service.py`)."""

from clearance.identity.assertions.oidc import (
    AssertedDocument,
    AssertedIdentity,
    FileKeys,
    IssuerConfig,
    UrlKeys,
    key_source,
    verify_id_token,
)
from clearance.identity.assertions.service import accept_assertion, accept_webhook
from clearance.identity.assertions.webhooks import VendorConfig, WebhookEvent, parse_event

__all__ = [
    "AssertedDocument",
    "AssertedIdentity",
    "FileKeys",
    "IssuerConfig",
    "UrlKeys",
    "VendorConfig",
    "WebhookEvent",
    "accept_assertion",
    "accept_webhook",
    "key_source",
    "parse_event",
    "verify_id_token",
]
