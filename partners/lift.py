"""Lift of a shown group over a held-out group, with 95 % confidence intervals (pure functions).

Repeat purchase rate: the difference of two proportions with a Wald interval,
  diff ± 1.96·√(p₁(1−p₁)/n₁ + p₀(1−p₀)/n₀).
Spend per customer: the difference of two means with Welch's standard error,
  diff ± 1.96·√(s₁²/n₁ + s₀²/n₀).
Both rest on the normal approximation, so below `MIN_GROUP` customers in a group, or with
fewer than `MIN_EVENTS` repeaters or non-repeaters in a group, the sample is called too small
to tell and no interval is given. See docs/retention.md.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

Z_95 = 1.959964
MIN_GROUP = 100
MIN_EVENTS = 10


class Verdict(StrEnum):
    too_small = "too_small"
    more_repeat_purchases = "more_repeat_purchases"  # the whole interval lies above 0
    fewer_repeat_purchases = "fewer_repeat_purchases"  # the whole interval lies below 0
    no_clear_difference = "no_clear_difference"


@dataclass(frozen=True)
class Group:
    customers: int
    repeaters: int
    spend_minor: Sequence[int]  # per customer, over the window

    @property
    def repeat_rate(self) -> float | None:
        return self.repeaters / self.customers if self.customers else None

    @property
    def spend_per_customer(self) -> float | None:
        return sum(self.spend_minor) / self.customers if self.customers else None


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class Lift:
    repeat_rate: Interval | None  # shown − held out, in rate points (0.05 = 5 points)
    relative: float | None  # shown / held out − 1
    spend_per_customer: Interval | None  # shown − held out, minor units
    verdict: Verdict
    message: str


def too_small(shown: Group, held: Group) -> str | None:
    """Why the groups are too small for the normal approximation, or None when they are not."""
    for name, group in (("held-out", held), ("shown", shown)):
        if group.customers < MIN_GROUP:
            return f"Too few customers to tell: {group.customers} in the {name} group, at least {MIN_GROUP} needed."
        if min(group.repeaters, group.customers - group.repeaters) < MIN_EVENTS:
            return (
                f"Too few customers to tell: the {name} group needs at least {MIN_EVENTS} customers who "
                f"bought again and {MIN_EVENTS} who did not."
            )
    return None


def rate_difference(shown: Group, held: Group) -> Interval:
    """Shown minus held-out repeat rate, with its Wald interval."""
    p1, p0 = shown.repeaters / shown.customers, held.repeaters / held.customers
    se = math.sqrt(p1 * (1 - p1) / shown.customers + p0 * (1 - p0) / held.customers)
    diff = p1 - p0
    return Interval(diff, diff - Z_95 * se, diff + Z_95 * se)


def mean_difference(shown: Sequence[float], held: Sequence[float]) -> Interval:
    """Shown minus held-out mean, with Welch's standard error (each group ≥ 2 values)."""
    m1, m0 = statistics.fmean(shown), statistics.fmean(held)
    se = math.sqrt(statistics.variance(shown) / len(shown) + statistics.variance(held) / len(held))
    diff = m1 - m0
    return Interval(diff, diff - Z_95 * se, diff + Z_95 * se)


def lift(shown: Group, held: Group) -> Lift:
    """The lift of showing the offer, and a plain verdict."""
    reason = too_small(shown, held)
    if reason is not None:
        return Lift(None, None, None, Verdict.too_small, reason)
    rate = rate_difference(shown, held)
    p0 = held.repeaters / held.customers
    relative = (shown.repeaters / shown.customers) / p0 - 1 if p0 > 0 else None
    spend = mean_difference([float(v) for v in shown.spend_minor], [float(v) for v in held.spend_minor])
    points = f"{rate.estimate * 100:+.1f} points (95 % interval {rate.low * 100:+.1f} to {rate.high * 100:+.1f})"
    if rate.low > 0:
        verdict, message = Verdict.more_repeat_purchases, f"Customers shown the offer bought again more: {points}."
    elif rate.high < 0:
        verdict, message = Verdict.fewer_repeat_purchases, f"Customers shown the offer bought again less: {points}."
    else:
        verdict = Verdict.no_clear_difference
        message = f"No clear difference yet: {points}; the interval includes zero."
    return Lift(rate, relative, spend, verdict, message)
