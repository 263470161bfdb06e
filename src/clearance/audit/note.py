"""C2SP signed-note: a UTF-8 text, a blank line, and one signature line per key.

<text ending in a newline>
<blank line>
— <key name> <base64(4-byte key id || Ed25519 signature over the text)>
"""

from __future__ import annotations

import base64

from clearance.audit.keys import NoteSigner, NoteVerifier
from clearance.errors import VerificationError

SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space


def check_text(text: str) -> None:
    """C2SP signed-note "Note text": non-empty, ends in a newline, no other control chars."""
    if not text.endswith("\n") or any(ord(c) < 0x20 and c != "\n" for c in text):
        raise VerificationError("malformed note text")


def sign_note(text: str, signer: NoteSigner) -> str:
    check_text(text)
    sig = signer.key_id.to_bytes(4, "big") + signer.sign(text.encode())
    return f"{text}\n{SIGNATURE_PREFIX}{signer.name} {base64.b64encode(sig).decode()}\n"


def open_note(note: str, verifier: NoteVerifier) -> str:
    """Return the note's text if `verifier` signed it; other keys' signatures are ignored."""
    text, sep, sigs = note.rpartition("\n\n")
    if not sep or not sigs.endswith("\n"):
        raise VerificationError("malformed signed note")
    text += "\n"
    check_text(text)
    signatures = [_parse_signature(line) for line in sigs[:-1].split("\n")]
    for name, raw in signatures:
        if name != verifier.name or len(raw) < 5:
            continue
        if int.from_bytes(raw[:4], "big") != verifier.key_id:
            continue
        if not verifier.verify(text.encode(), raw[4:]):
            raise VerificationError(f"invalid signature for key {verifier.name}")
        return text
    raise VerificationError(f"note is not signed by {verifier.name}")


def _parse_signature(line: str) -> tuple[str, bytes]:
    if not line.startswith(SIGNATURE_PREFIX):
        raise VerificationError("malformed signature line in note")
    name, _, b64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
    try:
        return name, base64.b64decode(b64, validate=True)
    except ValueError as exc:  # binascii.Error, or a str that is not ASCII
        raise VerificationError("malformed signature in note") from exc
