"""Defection signals as pure functions: a customer's expected gap between orders, and their risk level.

The model (docs/retention.md): a repeat customer's own mean gap between orders, shrunk toward
the shop's typical gap by one pseudo-gap, so two orders a week apart do not make a weekly
buyer; a one-order customer gets the shop's typical gap. The level compares the silence since
the last order with that expected gap.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

# Until a shop has this many repeat customers its own typical gap is too noisy to use.
MIN_REPEAT_CUSTOMERS = 10
DEFAULT_TYPICAL_DAYS = 60.0
# The shop's typical gap counts as this many of the customer's own gaps.
PRIOR_GAPS = 1.0
MIN_INTERVAL_DAYS = 7.0
MAX_INTERVAL_DAYS = 730.0
# Silence, in expected gaps, from which each level starts.
COOLING_AFTER = 1.5
AT_RISK_AFTER = 2.5
LAPSED_AFTER = 4.0
# Silent this long, a customer has lapsed whatever their rhythm.
LAPSED_SILENCE_DAYS = 730.0
_DAY = 86400.0


class RiskLevel(StrEnum):
    active = "active"
    cooling = "cooling"
    at_risk = "at_risk"
    lapsed = "lapsed"


LEVELS = tuple(RiskLevel)
# The levels a win-back placement is for.
WIN_BACK_LEVELS = frozenset({RiskLevel.at_risk, RiskLevel.lapsed})


@dataclass(frozen=True)
class OrderRhythm:
    """What the signals need of a customer's history (all kept on the profile)."""

    order_count: int
    first_order_at: datetime
    last_order_at: datetime


@dataclass(frozen=True)
class Assessment:
    expected_interval_days: float
    days_silent: float
    days_overdue: float  # silence beyond the expected gap, 0 when not yet due
    overdue_ratio: float  # silence / expected gap
    level: RiskLevel


def own_mean_gap_days(rhythm: OrderRhythm) -> float | None:
    """The customer's mean gap between orders in days, or None with a single order."""
    if rhythm.order_count < 2:
        return None
    span = (rhythm.last_order_at - rhythm.first_order_at).total_seconds() / _DAY
    return span / (rhythm.order_count - 1)


def typical_interval_days(gaps: Iterable[float]) -> float:
    """The shop's typical gap: the median of its repeat customers' mean gaps, or the default."""
    values = [g for g in gaps if g > 0]
    if len(values) < MIN_REPEAT_CUSTOMERS:
        return DEFAULT_TYPICAL_DAYS
    return _clamp(statistics.median(values))


def expected_interval_days(rhythm: OrderRhythm, typical_days: float) -> float:
    """((n − 1)·own mean gap + PRIOR_GAPS·typical) / (n − 1 + PRIOR_GAPS), clamped to 7–730 days."""
    own = own_mean_gap_days(rhythm)
    if own is None:
        return _clamp(typical_days)
    gaps = rhythm.order_count - 1
    return _clamp((gaps * own + PRIOR_GAPS * typical_days) / (gaps + PRIOR_GAPS))


def level_for(days_silent: float, expected_days: float) -> RiskLevel:
    """The risk level for a silence measured against the expected gap (thresholds above)."""
    ratio = days_silent / expected_days
    if ratio >= LAPSED_AFTER or days_silent >= LAPSED_SILENCE_DAYS:
        return RiskLevel.lapsed
    if ratio >= AT_RISK_AFTER:
        return RiskLevel.at_risk
    if ratio >= COOLING_AFTER:
        return RiskLevel.cooling
    return RiskLevel.active


def assess(rhythm: OrderRhythm, typical_days: float, now: datetime) -> Assessment:
    """The customer's defection signals at `now`."""
    expected = expected_interval_days(rhythm, typical_days)
    silent = max(0.0, (now - rhythm.last_order_at).total_seconds() / _DAY)
    return Assessment(
        expected_interval_days=expected,
        days_silent=silent,
        days_overdue=max(0.0, silent - expected),
        overdue_ratio=silent / expected,
        level=level_for(silent, expected),
    )


def due_at(last_order_at: datetime, expected_days: float) -> datetime:
    """When the next order is expected."""
    return last_order_at + timedelta(days=expected_days)


def _clamp(days: float) -> float:
    return min(MAX_INTERVAL_DAYS, max(MIN_INTERVAL_DAYS, days))
