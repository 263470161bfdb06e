"""Phased restore after a kill switch: who a model is served to again while it is widened.

A cohort is a percentage of people, a set of organisations, or both (each step widens: the union
of every step since the suspension). The percentage is stable by person: the pseudonymous subject
id is hashed with the model id into a bucket in [0, 100), and a person is in the cohort while
their bucket is below the percentage, so whoever is in at 10 % is still in at 50 %, and another
model's restore draws a different 10 %. "Internal users" are members of the organisations named
in `[policy] internal_orgs`, resolved to ids when the step is taken (the audit entry names them).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

FULL = 100


def bucket(subject_id: str, model_id: str) -> int:
    """The person's stable place in [0, 100) for this model's restore."""
    digest = hashlib.sha256(f"{model_id}\x00{subject_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % FULL


@dataclass(frozen=True, slots=True)
class OrgRef:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class RestoreCohort:
    """Who is served while the model is in phased restore; everyone else gets `model-restoring`."""

    percent: int = 0  # 0..99: people whose bucket is below it
    orgs: tuple[OrgRef, ...] = ()  # every member of these organisations
    internal: bool = False  # the orgs include `[policy] internal_orgs` (for display)

    def admits(self, model_id: str, subject_id: str, org_id: int | None) -> bool:
        if org_id is not None and any(o.id == org_id for o in self.orgs):
            return True
        return self.percent > 0 and bucket(subject_id, model_id) < self.percent

    def widen(
        self, *, percent: int = 0, orgs: tuple[OrgRef, ...] = (), internal: bool = False
    ) -> RestoreCohort:
        known = {o.id for o in self.orgs}
        return RestoreCohort(
            percent=max(self.percent, percent),
            orgs=(*self.orgs, *(o for o in orgs if o.id not in known)),
            internal=self.internal or internal,
        )

    def as_json(self) -> dict[str, object]:
        return {
            "percent": self.percent,
            "orgs": [o.name for o in self.orgs],
            "internal": self.internal,
        }

    def to_row(self) -> dict[str, object]:
        return {
            "restore_percent": self.percent,
            "restore_orgs": [{"id": o.id, "name": o.name} for o in self.orgs],
            "restore_internal": self.internal,
        }

    @classmethod
    def from_row(
        cls, percent: int | None, orgs: list[dict[str, object]] | None, internal: bool | None
    ) -> RestoreCohort | None:
        if percent is None:
            return None  # not in phased restore
        refs = tuple(OrgRef(int(str(o["id"])), str(o["name"])) for o in orgs or ())
        return cls(percent=percent, orgs=refs, internal=bool(internal))


NOT_RESTORING: dict[str, object] = {
    "restore_percent": None,
    "restore_orgs": None,
    "restore_internal": None,
}
