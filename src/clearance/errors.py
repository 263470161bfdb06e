"""One error tree for all of Clearance.

    ClearanceError (500)                 root: an HTTP status and a detail safe to show a client
    ├── ConfigError (500)                the configuration file or environment is wrong
    ├── InvalidInput (400)               a value the caller gave is malformed
    │   └── PayloadTooLarge (413)
    ├── AuthenticationError (401)        missing, unknown or revoked API key / session
    ├── PermissionDenied (403)           authenticated, but not allowed to use this surface
    ├── NotFound (404)                   unknown user, model, key, entry ...
    ├── Conflict (409)                   the change contradicts stored state (duplicate, cycle)
    ├── LegalDenial (451)                the policy denied access (RFC 7725)
    ├── VerificationError (422)          a check failed: MRZ check digit, Merkle proof, signature
    ├── UnavailableError (503)           a dependency we must not proceed without is down
    │   ├── PolicyError (503)            the policy could not be evaluated: fail closed
    │   └── AuditUnavailable (503)       the audit log could not persist: fail closed
    └── UpstreamError (502)              the model provider failed
        └── UpstreamTimeout (504)

Handlers turn any ClearanceError into a response in the caller's shape (CLI message, OpenAI or
Anthropic error body, portal page); nothing else is caught broadly.
"""

from __future__ import annotations


class ClearanceError(Exception):
    status: int = 500
    code: str = "internal_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ConfigError(ClearanceError):
    code = "config_error"


class InvalidInput(ClearanceError):
    status = 400
    code = "invalid_request"


class PayloadTooLarge(InvalidInput):
    status = 413
    code = "payload_too_large"


class AuthenticationError(ClearanceError):
    status = 401
    code = "invalid_api_key"


class PermissionDenied(ClearanceError):
    status = 403
    code = "permission_denied"


class NotFound(ClearanceError):
    status = 404
    code = "not_found"


class Conflict(ClearanceError):
    status = 409
    code = "conflict"


class LegalDenial(ClearanceError):
    status = 451
    code = "unavailable_for_legal_reasons"


class VerificationError(ClearanceError):
    status = 422
    code = "verification_failed"


class UnavailableError(ClearanceError):
    status = 503
    code = "service_unavailable"


class PolicyError(UnavailableError):
    code = "policy_unavailable"


class AuditUnavailable(UnavailableError):
    code = "audit_unavailable"


class UpstreamError(ClearanceError):
    status = 502
    code = "upstream_error"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"
