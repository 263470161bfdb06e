"""Screening thresholds, from the `[screening]` table of the settings."""

from __future__ import annotations

from clearance.config import Settings
from clearance.screening.models import Thresholds


def thresholds(settings: Settings) -> Thresholds:
    s = settings.screening
    return Thresholds(
        match=s.match,
        potential=s.potential,
        max_matches=s.max_matches,
        ownership_review=s.ownership_review,
    )
