"""API keys: 256 bits from the CSPRNG, shown once, stored as SHA-256 only."""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "sk-clr-"


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    # A fast hash suffices for a 256-bit random secret (no dictionary to attack) and keeps the
    # lookup O(1) by hash, so no secret is ever compared byte by byte.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def looks_like_key(value: str) -> bool:
    return value.startswith(PREFIX) and 20 <= len(value) <= 100
