"""One error tree for all of Clearance.

    ClearanceError (500)                 root: an HTTP status and a detail safe to show a client
    ├── ConfigError (500)                the configuration file or environment is wrong (exit 2)
    ├── InvalidInput (400)               a value the caller gave is malformed
    │   ├── PayloadTooLarge (413)
    │   │   └── ImageTooLarge (413)      an upload over the byte or pixel limit (decompression bomb)
    │   ├── UnsupportedImage (415)       not an image, a format not on the allowlist, undecodable
    │   └── RequestTimeout (408)         the client did not send its request body in time
    ├── AuthenticationError (401)        missing, unknown or revoked API key / session
    │   └── InvalidToken (401)           missing, unknown, expired or revoked admin token
    ├── PermissionDenied (403)           authenticated, but not allowed to use this surface
    │   └── InsufficientScope (403)      an admin token without the route's scope
    ├── NotFound (404)                   unknown user, model, key, entry ...
    ├── Conflict (409)                   the change contradicts stored state (duplicate, cycle)
    ├── RateLimited (429)                too many attempts (bad keys, sign-ins); retry after a while
    │   └── LimitExceeded (429)          a person's, org's or key's limit (clearance.limits)
    ├── LegalDenial (451)                the policy denied access (RFC 7725)
    ├── VerificationError (422)          a check failed: MRZ check digit, Merkle proof, signature
    │   ├── MrzError (422)               a machine readable zone (ICAO 9303) is not acceptable
    │   │   ├── MrzNotFound              no MRZ could be located / read in the image
    │   │   ├── MrzFormatError           wrong layout, line length or character set
    │   │   ├── MrzCheckDigitError       a check digit (9303-3 §4.9) or the composite does not match
    │   │   ├── MrzFieldError            a field is out of range: date, sex, document code
    │   │   ├── UnknownCountryCode       a code not in the 9303-3 §5 table
    │   │   └── SpecimenDocument         a specimen (UTO, 9303-3 §5 Part G), never a real person
    │   ├── FaceError (422)              the portrait or selfie cannot be used
    │   │   ├── NoFaceFound
    │   │   └── MultipleFaces
    │   └── ChipError (422)              eMRTD chip data refused (ICAO 9303-11 §5.1, Passive Auth.)
    │       ├── ChipFormatError          not DER, truncated, over a size or nesting limit
    │       ├── ChipAlgorithmError       a digest or signature algorithm not accepted
    │       ├── ChipSignatureError       the SOD's signature or signed attributes do not verify
    │       ├── ChipCertificateError     a DS or CSCA certificate unusable (dates, key usage)
    │       ├── ChipUntrusted            the Document Signer chains to no loaded CSCA
    │       └── ChipHashMismatch         a data group differs from its hash in the SOD
    ├── UnavailableError (503)           a dependency we must not proceed without is down
    │   ├── PolicyError (503)            the policy could not be evaluated: fail closed
    │   ├── AuditUnavailable (503)       the audit log could not persist: fail closed
    │   ├── LimitsUnavailable (503)      the limits cannot be counted (Redis down): fail closed
    │   ├── MailError (503)              the mail server is down or refused a message
    │   └── QueueFull (503)              more verifications waiting than the workers can take
    └── UpstreamError (502)              the model provider failed
        └── UpstreamTimeout (504)

Handlers turn any ClearanceError into a response in the caller's shape (CLI message and exit
code, OpenAI or Anthropic error body, portal page); nothing else is caught broadly.
"""

from __future__ import annotations


class ClearanceError(Exception):
    status: int = 500
    code: str = "internal_error"
    exit_code: int = 1  # what the CLI exits with

    def __init__(self, detail: str, *, reason: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        # What the audit log records; finer than `code`, which the client sees (a revoked key
        # is `invalid_api_key` to the client, `revoked_api_key` in the log).
        self.reason = reason or self.code


class ConfigError(ClearanceError):
    code = "config_error"
    exit_code = 2  # as for a usage error: nothing was started


class InvalidInput(ClearanceError):
    status = 400
    code = "invalid_request"


class PayloadTooLarge(InvalidInput):
    status = 413
    code = "payload_too_large"


class ImageTooLarge(PayloadTooLarge):
    code = "image_too_large"


class UnsupportedImage(InvalidInput):
    status = 415
    code = "unsupported_image"


class RequestTimeout(InvalidInput):
    status = 408
    code = "request_timeout"


class AuthenticationError(ClearanceError):
    status = 401
    code = "invalid_api_key"


class InvalidToken(AuthenticationError):
    code = "invalid_token"  # RFC 6750 §3.1


class PermissionDenied(ClearanceError):
    status = 403
    code = "permission_denied"


class InsufficientScope(PermissionDenied):
    code = "insufficient_scope"  # RFC 6750 §3.1


class NotFound(ClearanceError):
    status = 404
    code = "not_found"


class Conflict(ClearanceError):
    status = 409
    code = "conflict"


class RateLimited(ClearanceError):
    status = 429
    code = "rate_limit_exceeded"

    def __init__(self, detail: str, *, retry_after: int, reason: str | None = None) -> None:
        super().__init__(detail, reason=reason)
        self.retry_after = retry_after  # seconds (RFC 9110 §10.2.3)


class LimitExceeded(RateLimited):
    """A configured limit (requests or tokens per minute, concurrent requests) is reached; the
    caller waits, unlike a bad-key client, which is held (the tarpit) first."""


class BudgetExceeded(LimitExceeded):
    """A spend budget for the period is used up: 429 with OpenAI's quota code (its SDK raises
    RateLimitError; the code tells a client that waiting a minute will not help)."""

    code = "insufficient_quota"


class LegalDenial(ClearanceError):
    status = 451
    code = "unavailable_for_legal_reasons"


class VerificationError(ClearanceError):
    status = 422
    code = "verification_failed"


class MrzError(VerificationError):
    code = "mrz_invalid"


class MrzNotFound(MrzError):
    code = "mrz_not_found"


class MrzFormatError(MrzError):
    code = "mrz_format"


class MrzCheckDigitError(MrzError):
    """Carries the names of every field whose check digit failed (never their values)."""

    code = "mrz_check_digit"

    def __init__(self, detail: str, fields: tuple[str, ...]) -> None:
        super().__init__(detail)
        self.fields = fields


class MrzFieldError(MrzError):
    code = "mrz_field"


class UnknownCountryCode(MrzError):
    code = "mrz_unknown_code"


class SpecimenDocument(MrzError):
    code = "specimen_document"


class FaceError(VerificationError):
    code = "face_unusable"


class NoFaceFound(FaceError):
    code = "no_face"


class MultipleFaces(FaceError):
    code = "multiple_faces"


class ChipError(VerificationError):
    """`reason` is finer than `code` (`ds_expired`, `dg1_hash_mismatch`): the audit log's word."""

    code = "chip_invalid"


class ChipFormatError(ChipError):
    code = "chip_malformed"


class ChipAlgorithmError(ChipError):
    code = "chip_algorithm"


class ChipSignatureError(ChipError):
    code = "chip_signature"


class ChipCertificateError(ChipError):
    code = "chip_certificate"


class ChipUntrusted(ChipError):
    code = "chip_untrusted"


class ChipHashMismatch(ChipError):
    code = "chip_hash_mismatch"


class UnavailableError(ClearanceError):
    status = 503
    code = "service_unavailable"


class PolicyError(UnavailableError):
    code = "policy_unavailable"


class AuditUnavailable(UnavailableError):
    code = "audit_unavailable"


class LimitsUnavailable(UnavailableError):
    code = "limits_unavailable"


class MailError(UnavailableError):
    code = "mail_unavailable"


class QueueFull(UnavailableError):
    code = "queue_full"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after  # seconds (RFC 9110 §10.2.3)


class UpstreamError(ClearanceError):
    status = 502
    code = "upstream_error"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"
