"""Sign-in rate limits shared by every worker and host, counted in `portal_rate_limits`.

Each subject (an email address, a client address) has one counter per fixed window. A request is
allowed while the sliding-window estimate stays within the limit: the current window's count plus
the previous window's count weighted by how much of that window the sliding window still covers.
The estimate smooths the burst a plain fixed window allows at its edges (2x the limit across a
boundary) at the cost of two rows per subject.

The increment is one atomic upsert (`INSERT .. ON CONFLICT DO UPDATE SET count = count + 1 WHERE
count < room RETURNING count`) on SQLite and PostgreSQL alike, so N workers, or N hosts on one
PostgreSQL, share one budget: concurrent requests cannot both take the last unit. A refused
attempt is not counted (the row is left as it was).

Subjects are stored as HMAC-SHA-256 under a key derived from the audit signing key, never as the
address itself: a plain hash of an email or IPv4 address is reversed by enumeration, a keyed one
is not without the key (GDPR art. 4(5) pseudonymisation; OWASP ASVS 5.0 V14 data protection).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from clearance.audit.keys import derived_key
from clearance.config import Settings
from clearance.portal.tables import portal_rate_limits as _t

SIGNIN_WINDOW = 15 * 60  # seconds; [portal] signins_per_address / _per_client count per window
_EPSILON = 1e-9  # float noise in `limit - previous * weight` must not cost a whole unit


def limiter_key(settings: Settings) -> bytes:
    """The HMAC key for stored subjects, derived from the audit signing key (no new secret)."""
    return derived_key(settings.audit.signing_key_file, "portal-rate-limit")


class RateLimiter:
    """At most `limit` events per subject in any `window` seconds (sliding-window estimate)."""

    def __init__(
        self,
        engine: Engine,
        key: bytes,
        *,
        scope: str,
        limit: int,
        window: int = SIGNIN_WINDOW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Wall-clock time, not monotonic: windows must line up across processes and hosts.
        self.limit = limit
        self.window = window
        self._engine = engine
        self._key = key
        self._scope = scope.encode()
        self._clock = clock
        self._dialect = engine.dialect.name

    def digest(self, subject: str) -> str:
        # The scope keeps two limiters' counters apart even for the same subject.
        message = self._scope + b"\0" + subject.encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def allow(self, subject: str) -> bool:
        """Count an attempt; False when the subject is over its limit (then nothing is counted).

        Blocking (one short write transaction): call it from a worker thread in async code.
        """
        now = self._clock()
        start = int(now // self.window) * self.window
        key = self.digest(subject)
        with self._engine.begin() as conn:
            previous = _count(conn, key, start - self.window)
            weight = 1.0 - (now - start) / self.window
            room = math.floor(self.limit - previous * weight + _EPSILON)
            if room < 1:
                return False
            return conn.execute(_increment(self._dialect, key, start, room)).first() is not None


def _increment(dialect: str, key: str, window_start: int, room: int) -> sa.Executable:
    """count + 1 while count < room, atomically; returns a row only when it counted."""
    target = [_t.c.key_hash, _t.c.window_start]
    bump, below = {"count": _t.c.count + 1}, _t.c.count < room
    row = {"key_hash": key, "window_start": window_start, "count": 1}
    if dialect == "postgresql":
        pg = postgresql.insert(_t).values(row)
        return pg.on_conflict_do_update(index_elements=target, set_=bump, where=below).returning(
            _t.c.count
        )
    lite = sqlite.insert(_t).values(row)
    return lite.on_conflict_do_update(index_elements=target, set_=bump, where=below).returning(
        _t.c.count
    )


def _count(conn: Connection, key: str, window_start: int) -> int:
    found = conn.execute(
        sa.select(_t.c.count).where(_t.c.key_hash == key, _t.c.window_start == window_start)
    ).scalar()
    return int(found or 0)


def purge(conn: Connection, *, now: float, window: int = SIGNIN_WINDOW) -> int:
    """Drop windows that are neither current nor previous: nothing reads them any more."""
    done = conn.execute(sa.delete(_t).where(_t.c.window_start < now - 2 * window))
    return int(done.rowcount)
