"""The verifier's one error tree.

VerifyError
 ├── VerificationFailed   the evidence does not verify: tampering, a fork, a rollback, a bad
 │                         signature. The message names what (entry index, file, key).
 └── CannotCheck          the check could not be made: the log is unreachable, a file is
                           unreadable, an argument is malformed. Says nothing about the log.
"""

from __future__ import annotations


class VerifyError(Exception):
    pass


class VerificationFailed(VerifyError):
    pass


class CannotCheck(VerifyError):
    pass
