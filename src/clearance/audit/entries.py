"""Audit entries: typed records, encoded as canonical JSON (RFC 8785) — the bytes that are hashed.

Every entry names a pseudonymous subject (the user's random `subject_id`, never an email or a
name) and digests of the facts and policy used; never documents, biometrics, prompts or
completions. The encoding is canonical so anyone can re-derive the leaf hash from the record.
"""

from __future__ import annotations

import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal, cast

import orjson
import rfc8785

from clearance.errors import InvalidInput

EntryType = Literal[
    "access_decision", "identity_decision", "screening_decision", "admin_action", "refusal_summary"
]

# The entry schema version this release writes. Version 1 (no `schema` field) packed status,
# reason and the decision index into `outcome` strings; readers upgrade it (audit/compat.py).
# Version 3 adds the misuse guard's check to access decisions (`guard`) and the outcome `cut`.
# The JSON Schema of each version is published in docs/audit/ and served at /audit/schema.
SCHEMA = 3

# What became of a gateway request, one word each; the detail is in `status` and `reason`.
Outcome = Literal["forwarding", "denied", "rejected", "failed", "disconnected", "suspended", "cut"]
OUTCOMES: tuple[Outcome, ...] = (
    "forwarding",  # the decision allowed (or fell back) and the request goes upstream
    "denied",  # refused by the policy: HTTP 451, `reason` names the rule
    "rejected",  # refused before a decision, after authentication (bad body, unknown model, 413)
    "failed",  # the upstream failed after forwarding: 502/504, `reason` says how
    "disconnected",  # the client went away while the reply was in flight
    "suspended",  # the kill switch ended the request in flight
    "cut",  # the misuse guard flagged the answer: withheld, or the stream ended (docs/guard.md)
)
Surface = Literal["openai", "anthropic"]


def rfc3339(moment: datetime | None = None) -> str:
    """RFC 3339 §5.6 UTC timestamp with microseconds, e.g. 2025-01-31T12:00:00.000001Z."""
    moment = datetime.now(UTC) if moment is None else moment
    if moment.tzinfo is None:
        raise InvalidInput("audit times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now() -> str:
    return rfc3339()


class _Clock:
    """`rfc3339()` of now at request rate: the date and time to the second are formatted once a
    second, the microseconds on every call (~0.3 µs where strftime costs ~3 µs)."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self) -> str:
        now = _time.time_ns() // 1000
        second, micro = divmod(now, 1_000_000)
        if second != self._second:
            moment = datetime.fromtimestamp(second, UTC)
            self._prefix = moment.strftime("%Y-%m-%dT%H:%M:%S.")
            self._second = second
        return f"{self._prefix}{micro:06d}Z"


utc_now_rfc3339 = _Clock()


def canonical(record: Mapping[str, object]) -> bytes:
    """RFC 8785 JSON Canonicalization Scheme.

    For records made only of strings, integers within ±2^53, booleans, nulls, lists and objects
    with ASCII keys, RFC 8785 output equals orjson's sorted, compact output: keys sort the same
    (ASCII: UTF-16 and UTF-8 order agree, §3.2.3), strings escape the same minimal set (§3.2.2.2)
    and integers print the same (§3.2.2.3). That is every entry the gateway writes, at ~1/20 of
    the cost; anything else (a float, a non-ASCII key) takes the reference implementation.
    The equivalence is held by a property test against `rfc8785`.
    """
    if _plain(record):
        try:
            return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # e.g. a lone surrogate: let the reference implementation judge it
    try:
        # Values are checked by rfc8785 itself: anything not JSON raises below.
        return rfc8785.dumps(cast(Any, record))
    except (rfc8785.CanonicalizationError, TypeError) as exc:
        raise InvalidInput(f"audit entry is not canonical JSON: {exc}") from exc


_SAFE_INT = 2**53


def _plain(value: object) -> bool:
    if value is None or isinstance(value, (str, bool)):
        return True
    if isinstance(value, int):
        return -_SAFE_INT < value < _SAFE_INT
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and k.isascii() and _plain(v) for k, v in value.items())
    return False


def _shallow(record: object) -> dict[str, object]:
    return {f.name: getattr(record, f.name) for f in fields(record)}  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessDecision:
    """A gateway decision on one request (DESIGN.md "The request path"), or what became of it.

    A decision entry has `outcome` forwarding or denied; an outcome entry (failed, disconnected,
    suspended) names its decision in `decision_index`. Decision fields are null for a request
    rejected before a decision (bad body, unknown model). Requests refused before anyone is
    authenticated are counted in `RefusalSummary` entries instead.
    """

    subject: str
    key_id: str
    surface: Surface
    endpoint: str  # the API path asked for, e.g. /v1/chat/completions
    stream: bool | None  # whether the client asked for a stream; null if the body was unread
    model_requested: str | None
    model_served: str | None
    effect: str  # allow | deny | fallback | error
    rules: tuple[str, ...]
    policy_hash: str | None
    facts_digest: str | None
    facts_version: str | None
    list_versions: Mapping[str, str] = field(default_factory=dict)
    action: str  # inference | fine_tune | download_weights
    ip_country: str | None
    outcome: Outcome
    status: int | None  # the HTTP status Clearance answered with; null while forwarding
    reason: str | None  # a code: the rule that denied or fell back, the error, the failure
    decision_index: int | None = None  # outcome entries: the decision they follow
    # The misuse guard's check behind this entry (guard/models.py Check.entry): stage, outcome,
    # categories, score_milli, error, classifier, a keyed digest of the text, fail_open. Never
    # the text. Null when the model is not guarded.
    guard: Mapping[str, object] | None = None
    time: str = field(default_factory=_now)
    schema: int = SCHEMA
    type: Literal["access_decision"] = "access_decision"

    def encode(self) -> bytes:
        record = {**_shallow(self), "list_versions": dict(self.list_versions)}
        if self.guard is not None:
            record["guard"] = dict(self.guard)
        return canonical(record)


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityDecision:
    """The outcome of an identity verification: what was concluded and from which evidence."""

    subject: str
    outcome: str  # verified | rejected | review
    method: str  # document | assertion | manual
    us_person: str | None
    assurance: str | None
    evidence_digest: str  # digest of the vault record, not the evidence itself
    reasons: tuple[str, ...] = ()
    reviewer: str | None = None
    expires: str | None = None
    time: str = field(default_factory=_now)
    schema: int = SCHEMA
    type: Literal["identity_decision"] = "identity_decision"

    def encode(self) -> bytes:
        return canonical(_shallow(self))


@dataclass(frozen=True, slots=True, kw_only=True)
class ScreeningDecision:
    """A restricted-party screening result; the matched list entry stays out (tip-off rule)."""

    subject: str
    status: str  # clear | potential_match | confirmed_match
    list_versions: Mapping[str, str]
    match_digest: str | None = None
    reviewer: str | None = None
    time: str = field(default_factory=_now)
    schema: int = SCHEMA
    type: Literal["screening_decision"] = "screening_decision"

    def encode(self) -> bytes:
        return canonical({**_shallow(self), "list_versions": dict(self.list_versions)})


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminAction:
    """An operator action: suspend, resume, attest, licence, policy change, list load ..."""

    actor: str
    action: str
    target: str
    details: Mapping[str, object]
    subject: str | None = None  # the data subject concerned, if any (pseudonymous)
    time: str = field(default_factory=_now)
    schema: int = SCHEMA
    type: Literal["admin_action"] = "admin_action"

    def encode(self) -> bytes:
        return canonical({**_shallow(self), "details": dict(self.details)})


@dataclass(frozen=True, slots=True, kw_only=True)
class RefusalSummary:
    """Requests refused before anyone was authenticated (missing, unknown or revoked key), counted.

    One entry per (reason, surface, client country, client network) per interval: anyone on the
    internet can send bad keys, and each would otherwise cost a durable, permanent write. The
    network is a keyed hash of the client's /24 (IPv4) or /48 (IPv6), never the address.
    """

    reason: str  # missing_api_key | invalid_api_key | revoked_api_key | key_in_url | ...
    status: int  # 401, or 429 once a client sent too many bad keys
    surface: Surface
    ip_country: str | None
    client_network: str | None  # null: the overflow bucket of an interval with too many networks
    count: int
    first: str  # RFC 3339: the first and last refusal counted here
    last: str
    interval: int  # seconds each summary covers
    time: str = field(default_factory=_now)
    schema: int = SCHEMA
    type: Literal["refusal_summary"] = "refusal_summary"

    def encode(self) -> bytes:
        return canonical(_shallow(self))


Entry = AccessDecision | IdentityDecision | ScreeningDecision | AdminAction | RefusalSummary


def access_decision(
    *,
    subject: str,
    key_id: str,
    surface: Surface,
    endpoint: str,
    stream: bool | None,
    model_requested: str | None,
    model_served: str | None,
    effect: str,
    rules: Sequence[str],
    policy_hash: str | None,
    facts_digest: str | None,
    facts_version: str | None,
    action: str,
    ip_country: str | None,
    outcome: Outcome,
    status: int | None,
    reason: str | None,
    list_versions: Mapping[str, str] | None = None,
    decision_index: int | None = None,
    guard: Mapping[str, object] | None = None,
    time: datetime | None = None,
) -> bytes:
    return AccessDecision(
        subject=subject,
        key_id=key_id,
        surface=surface,
        endpoint=endpoint,
        stream=stream,
        model_requested=model_requested,
        model_served=model_served,
        effect=effect,
        rules=tuple(rules),
        policy_hash=policy_hash,
        facts_digest=facts_digest,
        facts_version=facts_version,
        list_versions=list_versions or {},
        action=action,
        ip_country=ip_country,
        outcome=outcome,
        status=status,
        reason=reason,
        decision_index=decision_index,
        guard=guard,
        time=rfc3339(time),
    ).encode()


def identity_decision(
    *,
    subject: str,
    outcome: str,
    method: str,
    evidence_digest: str,
    us_person: str | None = None,
    assurance: str | None = None,
    reasons: Sequence[str] = (),
    reviewer: str | None = None,
    expires: str | None = None,
    time: datetime | None = None,
) -> bytes:
    return IdentityDecision(
        subject=subject,
        outcome=outcome,
        method=method,
        us_person=us_person,
        assurance=assurance,
        evidence_digest=evidence_digest,
        reasons=tuple(reasons),
        reviewer=reviewer,
        expires=expires,
        time=rfc3339(time),
    ).encode()


def screening_decision(
    *,
    subject: str,
    status: str,
    list_versions: Mapping[str, str],
    match_digest: str | None = None,
    reviewer: str | None = None,
    time: datetime | None = None,
) -> bytes:
    return ScreeningDecision(
        subject=subject,
        status=status,
        list_versions=list_versions,
        match_digest=match_digest,
        reviewer=reviewer,
        time=rfc3339(time),
    ).encode()


def admin_action(
    *,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, object],
    subject: str | None = None,
    time: datetime | None = None,
) -> bytes:
    return AdminAction(
        actor=actor,
        action=action,
        target=target,
        details=details,
        subject=subject,
        time=rfc3339(time),
    ).encode()


def refusal_summary(
    *,
    reason: str,
    status: int,
    surface: Surface,
    ip_country: str | None,
    client_network: str | None,
    count: int,
    first: datetime,
    last: datetime,
    interval: int,
    time: datetime | None = None,
) -> bytes:
    return RefusalSummary(
        reason=reason,
        status=status,
        surface=surface,
        ip_country=ip_country,
        client_network=client_network,
        count=count,
        first=rfc3339(first),
        last=rfc3339(last),
        interval=interval,
        time=rfc3339(time),
    ).encode()


_ACCESS_TAIL = b'","type":"access_decision"}'
# The fields of `AccessEncoder.encode`'s cache key, in order (the list versions come last).
_ACCESS_KEY = (
    "subject", "key_id", "surface", "endpoint", "stream", "model_requested", "model_served",
    "effect", "rules", "policy_hash", "facts_digest", "facts_version", "action", "ip_country",
    "outcome", "status", "reason",
)  # fmt: skip


class AccessEncoder:
    """`access_decision` bytes at request rate, from a cache of everything but the time.

    In the canonical (sorted-key) encoding `time` and `type` are the last two members, so an
    entry is a prefix fixed by the decision and the request's shape, the time, and a constant
    tail. A prefix is encoded once (by `access_decision` itself, so the bytes are the same by
    construction, and checked against it) and reused while the same caller gets the same decision
    for the same kind of request; only the timestamp is formatted per request. Entries that name
    a decision index (outcome entries, rare) are encoded in full.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._prefixes: dict[tuple[object, ...], bytes] = {}
        self._clock = utc_now_rfc3339

    def encode(
        self,
        *,
        subject: str,
        key_id: str,
        surface: Surface,
        endpoint: str,
        stream: bool | None,
        model_requested: str | None,
        model_served: str | None,
        effect: str,
        rules: tuple[str, ...],
        policy_hash: str | None,
        facts_digest: str | None,
        facts_version: str | None,
        list_versions: Mapping[str, str],
        action: str,
        ip_country: str | None,
        outcome: Outcome,
        status: int | None,
        reason: str | None,
    ) -> bytes:
        key = (
            subject, key_id, surface, endpoint, stream, model_requested, model_served, effect,
            rules, policy_hash, facts_digest, facts_version, action, ip_country, outcome, status,
            reason, tuple(list_versions.items()),  # a mapping is not hashable: its items
        )  # fmt: skip
        prefix = self._prefixes.get(key)
        if prefix is not None:
            return prefix + self._clock().encode() + _ACCESS_TAIL
        moment = datetime.now(UTC)
        fields: dict[str, Any] = dict(zip(_ACCESS_KEY, key, strict=False))  # not the versions
        entry = access_decision(**fields, list_versions=list_versions, time=moment)
        stamp = rfc3339(moment)
        head, sep, tail = entry.rpartition(b',"time":"' + stamp.encode())
        if sep and not head.count(b',"time":"') and tail == _ACCESS_TAIL:
            if len(self._prefixes) >= self._capacity:
                self._prefixes.clear()  # callers and decisions changed: start over
            self._prefixes[key] = head + b',"time":"'
        return entry
