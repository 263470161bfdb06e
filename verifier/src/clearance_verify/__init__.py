"""clearance-verify: check a Clearance audit log without trusting its operator.

An independent implementation, written from the specifications (RFC 9162, C2SP signed-note,
tlog-checkpoint, tlog-cosignature, tlog-tiles); it never imports `clearance`.
"""

from clearance_verify.errors import CannotCheck, VerificationFailed, VerifyError

__all__ = ["CannotCheck", "VerificationFailed", "VerifyError"]
__version__ = "0.1.0"
