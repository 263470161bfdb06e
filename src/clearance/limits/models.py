"""Limits as stored and as applied to one request: plain frozen data."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum


class Scope(StrEnum):
    DEFAULT = "default"  # every person without a limit of their own (per person, never shared)
    USER = "user"  # one verified person, whatever key they use
    ORG = "org"  # everyone in an organisation, together
    KEY = "key"  # one API key


class Period(StrEnum):
    DAY = "day"
    MONTH = "month"


def amount(value: Decimal) -> str:
    """12.5, not 12.500000 (as stored) or 1.25E+1."""
    return f"{value.normalize():f}"


@dataclass(frozen=True, slots=True)
class Values:
    """What a limit allows; None: not limited by this row (a user's row falls back to the
    default's value, field by field)."""

    rpm: int | None = None  # requests per minute
    tpm: int | None = None  # tokens per minute (the upstream's usage figures)
    concurrent: int | None = None  # requests in flight at once (streams included)
    budget: Decimal | None = None  # spend per period
    period: Period | None = None

    def over(self, base: Values) -> Values:
        """These values, each unset one taken from `base`."""
        return Values(
            rpm=base.rpm if self.rpm is None else self.rpm,
            tpm=base.tpm if self.tpm is None else self.tpm,
            concurrent=base.concurrent if self.concurrent is None else self.concurrent,
            budget=base.budget if self.budget is None else self.budget,
            period=base.period if self.period is None else self.period,
        )

    def astuple(self) -> tuple[object, ...]:
        return (self.rpm, self.tpm, self.concurrent, self.budget, self.period)

    @property
    def counted(self) -> bool:
        """Whether the request path counts anything for these values."""
        return bool(self.rpm or self.tpm or self.concurrent or self.budget_micros)

    @property
    def budget_micros(self) -> int:
        """The budget in millionths of the currency unit (what the counters add up); 0: none."""
        if not self.budget or self.period is None:
            return 0
        return int(self.budget * MICROS)


@dataclass(frozen=True, slots=True)
class Limit:
    """One stored row; `name` is what an operator called the target (email, org, key id)."""

    scope: Scope
    target: str  # the user's or org's id, the key's id, "" for the default
    values: Values
    updated_by: str
    updated_at: datetime
    name: str = ""

    def json(self) -> dict[str, object]:
        v = self.values
        return {
            "scope": self.scope.value,
            "target": self.name or self.target or None,
            "rpm": v.rpm,
            "tpm": v.tpm,
            "concurrent": v.concurrent,
            "budget": None if v.budget is None else amount(v.budget),
            "period": None if v.period is None else v.period.value,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Bucket:
    """One count a request is held to: `user:42`, `org:7`, `key:k_abc`, with its values."""

    id: str
    rpm: int = 0  # 0: not counted
    tpm: int = 0
    concurrent: int = 0
    budget: int = 0  # spend per period, in micros (MICROS per currency unit); 0: none
    period: Period | None = None


MICROS = 1_000_000  # spend is counted in integers: a millionth of the currency unit
# A request's output is reserved at its max_tokens, or this many tokens when it names none.
DEFAULT_OUTPUT_RESERVE = 4096


def period_window(period: Period, now: float) -> tuple[str, int]:
    """The budget period holding `now` (UTC: "d20261207", "m202612") and the whole seconds until
    the next one starts (a refusal's retry-after)."""
    t = datetime.fromtimestamp(now, UTC)
    if period is Period.DAY:
        end = datetime(t.year, t.month, t.day, tzinfo=UTC) + timedelta(days=1)
        name = t.strftime("d%Y%m%d")
    else:
        end = datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=UTC)
        name = t.strftime("m%Y%m")
    return name, max(1, math.ceil(end.timestamp() - now))


def cost_micros(input_tokens: int, output_tokens: int, prices: tuple[Decimal, Decimal]) -> int:
    """What the tokens cost, in micros: a price per million tokens is micros per token."""
    return math.ceil(input_tokens * prices[0] + output_tokens * prices[1])


@dataclass(frozen=True, slots=True)
class Refusal:
    """Which bucket's which limit refused, and when to try again (whole seconds, >= 1)."""

    bucket: str
    limit: str  # rpm | tpm | concurrent | budget
    retry_after: int

    @property
    def scope(self) -> str:
        return self.bucket.partition(":")[0]
