"""Signed result webhooks from configured verification vendors, mapped to the same facts.

The vendor signs `timestamp + "." + raw body` with HMAC-SHA256 (RFC 2104) under a secret shared
with us, and sends `Clearance-Signature: t=<unix seconds>,v1=<hex>` (several v1 values during a
secret rotation). We recompute over the raw bytes (never re-serialised JSON), compare in
constant time, refuse a timestamp outside the tolerance window (a replay of an old delivery),
and the service refuses an event id it has already accepted (a replay within the window).

The body is JSON: {"id": event id, "reference": our subject id for the person, "status":
"approved" | "declined" | "review", "verified_claims": OIDC4IA `verified_claims`}.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from clearance.errors import ConfigError, InvalidInput, VerificationError
from clearance.identity.assertions.oidc import AssertedIdentity, map_verified_claims

STATUSES = frozenset({"approved", "declined", "review"})


@dataclass(frozen=True, slots=True)
class VendorConfig:
    name: str
    secret: bytes
    tolerance_seconds: int = 300
    trust_frameworks: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], base: Path) -> VendorConfig:
        try:
            name, secret_file = str(raw["name"]), base / str(raw["secret_file"])
        except KeyError as exc:
            raise ConfigError(f"[[identity.vendors]] needs {exc.args[0]!r}") from None
        try:
            secret = secret_file.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"vendor {name}: cannot read its secret: {exc}") from exc
        if len(secret) < 32:  # RFC 2104 §3: a key shorter than the output weakens the MAC
            raise ConfigError(f"vendor {name}: the webhook secret must be at least 32 bytes")
        return cls(
            name=name,
            secret=secret,
            tolerance_seconds=int(raw.get("tolerance_seconds", 300)),
            trust_frameworks=tuple(str(t) for t in raw.get("trust_frameworks", ())),
        )


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    vendor: str
    id: str
    reference: str  # the person's subject id, as we gave it to the vendor
    status: str  # approved | declined | review
    identity: AssertedIdentity | None  # present when approved


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def _parse_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise VerificationError("the webhook signature header is malformed")
    return timestamp, signatures


def verify_signature(
    vendor: VendorConfig, header: str, body: bytes, *, now: float | None = None
) -> None:
    timestamp, signatures = _parse_header(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > vendor.tolerance_seconds:
        raise VerificationError("the webhook timestamp is outside the replay window")
    expected = sign(vendor.secret, timestamp, body).split("v1=", 1)[1].encode()
    # Check every candidate so timing does not tell which one matched (or how many there are).
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate.encode())
    if not matched:
        raise VerificationError("the webhook signature does not verify")


def parse_event(
    vendor: VendorConfig, header: str, body: bytes, *, now: float | None = None
) -> WebhookEvent:
    """Verify the signature over the raw body, then read the event."""
    verify_signature(vendor, header, body, now=now)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidInput("the webhook body is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("the webhook body is not a JSON object")
    event_id, reference, status = data.get("id"), data.get("reference"), data.get("status")
    if not isinstance(event_id, str) or not isinstance(reference, str) or status not in STATUSES:
        raise InvalidInput("the webhook needs a string id and reference and a known status")
    identity = None
    if status == "approved":
        identity = map_verified_claims(
            data.get("verified_claims"),
            source=vendor.name,
            subject=reference,
            trust_frameworks=vendor.trust_frameworks,
        )
    return WebhookEvent(vendor.name, event_id[:200], reference, str(status), identity)
