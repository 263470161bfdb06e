"""Which limits hold one caller: pure lookups over the rows every worker keeps in memory.

A person's own row wins field by field over the default; the default is per person (each person
gets the default allowance, never one shared among all). An org's and a key's rows apply on top:
a request must fit every bucket it falls in.
"""

from __future__ import annotations

from collections.abc import Iterable

from clearance.limits.models import Bucket, Limit, Scope, Values


class LimitTable:
    def __init__(self, rows: Iterable[Limit] = ()) -> None:
        self._rows = {(r.scope, r.target): r.values for r in rows}
        self._default = self._rows.get((Scope.DEFAULT, ""), Values())
        # Nothing counted anywhere: the request path does no work at all.
        self.empty = not any(v.counted for v in self._rows.values())

    def buckets(self, key_id: str, user_id: int, org_id: int | None) -> tuple[Bucket, ...]:
        """The buckets a request by this key, person and organisation is counted in."""
        if self.empty:
            return ()
        out = []
        user = self._rows.get((Scope.USER, str(user_id)))
        person = self._default if user is None else user.over(self._default)
        if person.counted:
            out.append(_bucket(f"user:{user_id}", person))
        if org_id is not None:
            org = self._rows.get((Scope.ORG, str(org_id)))
            if org is not None and org.counted:
                out.append(_bucket(f"org:{org_id}", org))
        key = self._rows.get((Scope.KEY, key_id))
        if key is not None and key.counted:
            out.append(_bucket(f"key:{key_id}", key))
        return tuple(out)


def _bucket(bucket_id: str, v: Values) -> Bucket:
    return Bucket(bucket_id, v.rpm or 0, v.tpm or 0, v.concurrent or 0, v.budget_micros, v.period)
