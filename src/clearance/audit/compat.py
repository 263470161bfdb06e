"""Reading entries of every schema version as the current one (dual reading, no rewriting).

The stored bytes are what the tree proves, so old entries are never migrated in place; a
reader that filters or reports on them sees them through `typed_view`, which gives a version 1
access entry the typed fields version 2 writes: `outcome` as one word, and `status`, `reason`
and `decision_index` taken out of the packed string (`rejected:401:invalid_api_key`,
`upstream_timeout:decision=17`).
"""

from __future__ import annotations

import re
from typing import Any

# Version 1 outcome words and what version 2 calls them, with the reason they imply.
_V1_OUTCOMES: dict[str, tuple[str, str | None, int | None]] = {
    "forwarding": ("forwarding", None, None),
    "denied": ("denied", None, 451),
    "client_disconnected": ("disconnected", "client_disconnected", None),
    "suspended_in_flight": ("suspended", "model-suspended", 451),
    "upstream_timeout": ("failed", "upstream_timeout", 504),
    "upstream_error": ("failed", "upstream_error", 502),
    "upstream_5xx": ("failed", "upstream_5xx", 502),
}
_REJECTED = re.compile(r"rejected:(\d{3}):([a-z0-9_.-]+)")
_FOLLOWS = re.compile(r"(.+):decision=(\d+)")


def typed_view(record: dict[str, Any]) -> dict[str, Any]:
    """The record with every typed field of the current schema that its version can supply."""
    if "schema" in record or record.get("type") != "access_decision":
        return record
    view = dict(record)
    outcome = str(record.get("outcome", ""))
    decision_index = None
    if (follows := _FOLLOWS.fullmatch(outcome)) is not None:
        outcome, decision_index = follows[1], int(follows[2])
    if (rejected := _REJECTED.fullmatch(outcome)) is not None:
        view.update(outcome="rejected", status=int(rejected[1]), reason=rejected[2])
    elif outcome in _V1_OUTCOMES:
        word, reason, status = _V1_OUTCOMES[outcome]
        rules = record.get("rules") or []
        if reason is None and record.get("effect") in ("deny", "fallback") and rules:
            reason = str(rules[0])  # the rule that denied the requested model
        view.update(outcome=word, status=status, reason=reason)
    if decision_index is not None:
        view["decision_index"] = decision_index
    if view.get("subject") == "anonymous":
        view["subject"] = None
    return view
