"""What every worker keeps in memory to decide: keys -> principals, the catalog, the policy.

Nothing on the request path touches the database in the common case. `poll` compares the
version counters (one small read) and drops exactly the kind of state that changed; the worker
(app.py) runs it when PostgreSQL announces a change (LISTEN/NOTIFY) and, as the safety net or on
SQLite, every 250 ms to 1 s, so a suspension or a new identity fact reaches every worker at once
on PostgreSQL and within a second on either (docs/architecture.md).

The callers are loaded lazily, one key at a time on its first use, and at most `[policy]
caller_cache_size` of them are kept, the least recently used dropped first: a worker's memory
does not grow with the number of principals (bench/scale.py: a million people with three million
keys).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from clearance.audit.keys import derived_key
from clearance.catalog.models import Catalog
from clearance.config import Settings
from clearance.errors import AuthenticationError
from clearance.policy.facts import principal_facts
from clearance.policy.models import Decision, PrincipalFacts, RequestContext
from clearance.policy.service import PolicyService
from clearance.principals import keys as api_keys
from clearance.principals.models import ApiKey
from clearance.principals.service import authenticate
from clearance.screening import service as screening
from clearance.store import reading, versions

_NEGATIVE_CACHE = 10_000
_clock = time.time  # what a cached caller's expiry is checked against


@dataclass(frozen=True, slots=True)
class Caller:
    key: ApiKey
    facts: PrincipalFacts
    pseudonym: str  # what the upstream sees: keyed, so it cannot be joined to the audit log
    # When the key stops working (POSIX seconds; inf: until revoked). A cached caller is checked
    # against it on every request: an expiry is no stored change, so no poll would drop it.
    expires: float = math.inf


class DecisionState:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.policy = PolicyService(settings)
        self.versions: dict[str, int] = {}
        self._callers: OrderedDict[str, Caller] = OrderedDict()
        self._caller_cache_size = settings.policy.caller_cache_size
        self._evicting = threading.Lock()
        self._unknown: dict[str, str] = {}  # key digest -> why it was refused
        self._list_versions: dict[str, str] = {}
        self._pseudonym_key = derived_key(settings.audit.signing_key_file, "upstream-pseudonym")

    @property
    def catalog(self) -> Catalog:
        assert self.policy.state is not None, "DecisionState.load() not called"
        return self.policy.state.catalog

    def load(self) -> None:
        with reading(self.engine) as conn:
            self.versions = versions.read_all(conn)
            self.policy.refresh(conn)
            self._list_versions = screening.list_versions(conn)

    def poll(self) -> set[str]:
        """Reload what changed since the last poll; returns the kinds that changed."""
        with reading(self.engine) as conn:
            current = versions.read_all(conn)
            changed = {k for k, v in current.items() if self.versions.get(k) != v}
            if changed & {versions.Kind.CATALOG.value, versions.Kind.LICENCES.value}:
                self.policy.refresh(conn)
            if versions.Kind.LISTS.value in changed:
                self._list_versions = screening.list_versions(conn)
        # The new versions first, then fresh caches: a lookup stores into the cache it started
        # with (load_caller), so one that read the database before this change stores into a
        # cache already dropped, never into the one the next request reads.
        self.versions = current
        if versions.Kind.PRINCIPALS.value in changed or versions.Kind.LISTS.value in changed:
            self._callers = OrderedDict()  # the dangerous one first: a revoked key is never served
            self._unknown = {}
        return changed

    def list_versions(self) -> dict[str, str]:
        """The restricted-party list versions decisions are taken against (for the audit log)."""
        return self._list_versions

    def cached_caller(self, secret: str) -> Caller | None:
        """The caller for a key from memory, or None when the database must be asked."""
        digest = api_keys.key_hash(secret)
        callers = self._callers
        caller = callers.get(digest)
        if caller is None:
            if digest in self._unknown:
                raise AuthenticationError("invalid API key", reason=self._unknown[digest])
            return None
        try:
            callers.move_to_end(digest)  # the most recently used now
        except KeyError:
            pass  # evicted meanwhile by a lookup in a thread: still served this once
        if caller.expires <= _clock():
            self._callers.pop(digest, None)
            if len(self._unknown) < _NEGATIVE_CACHE:
                self._unknown[digest] = "expired_api_key"
            raise AuthenticationError("invalid API key", reason="expired_api_key")
        return caller

    def load_caller(self, secret: str) -> Caller:
        """Look a key up in the database (run in a thread) and cache the result."""
        digest = api_keys.key_hash(secret)
        # Taken before the read: if a poll replaces them meanwhile, what we read may predate
        # the change (a revoked key, old facts) and goes into the dropped ones, unseen.
        callers, unknown = self._callers, self._unknown
        try:
            with reading(self.engine) as conn:
                key, user = authenticate(conn, secret)
        except AuthenticationError as exc:
            if len(unknown) < _NEGATIVE_CACHE:
                unknown[digest] = exc.reason
            raise
        expires = math.inf if key.expires_at is None else key.expires_at.timestamp()
        caller = Caller(key, principal_facts(user), self._pseudonym(user.subject_id), expires)
        with self._evicting:  # lookups run in threads; the event loop only reads and reorders
            callers[digest] = caller
            while len(callers) > self._caller_cache_size:
                callers.popitem(last=False)  # the least recently used
        return caller

    def decide(
        self,
        caller: Caller,
        model_id: str,
        ctx: RequestContext,
        *,
        allow_fallback: bool | None = None,
    ) -> Decision:
        return self.policy.decide_in_memory(
            caller.facts,
            model_id,
            ctx,
            allow_fallback=caller.key.allow_fallback if allow_fallback is None else allow_fallback,
        )

    def _pseudonym(self, subject_id: str) -> str:
        mac = hmac.new(self._pseudonym_key, subject_id.encode(), hashlib.sha256).hexdigest()
        return "clr_" + mac[:32]
