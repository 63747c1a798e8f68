"""The exchange's retention rules as pure, named functions: placements by moment, risk and value targeting.

- `win_back`: only for a customer at risk or lapsed (the host's own re-engagement email).
- `appreciation`: only for the host's best customers by lifetime value (the `top` band), and
  only gifts and early access.
- Offers may target churn-risk levels and lifetime-value bands (empty: any).

Each rule answers the reason it refuses, or None; the exchange counts the reason. Lifetime-value
bands are relative to the host: `low` below its median customer, `middle` up to the 90th
percentile, `top` from there (thresholds refreshed by the daily job). See docs/retention.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from partners.churn_risk import WIN_BACK_LEVELS, RiskLevel

WIN_BACK = "win_back"
APPRECIATION = "appreciation"
APPRECIATION_KINDS = frozenset({"free_gift", "early_access"})
# Bands need this many customers with a lifetime value before percentiles mean anything.
MIN_CUSTOMERS_FOR_BANDS = 20
TOP_QUANTILE = 0.9


class LtvBand(StrEnum):
    low = "low"
    middle = "middle"
    top = "top"


@dataclass(frozen=True, slots=True)
class LtvThresholds:
    currency: str
    median_minor: int
    top_minor: int  # the 90th percentile


@dataclass(frozen=True, slots=True)
class Shopper:
    """What the retention rules know of the host's customer."""

    risk_level: RiskLevel | None  # None before their first order
    lifetime_value: int | None
    currency: str | None


def thresholds(currency: str, values: Sequence[int]) -> LtvThresholds | None:
    """The host's median and 90th-percentile lifetime value, or None with too few customers."""
    if len(values) < MIN_CUSTOMERS_FOR_BANDS:
        return None
    deciles = statistics.quantiles(sorted(values), n=10, method="inclusive")
    return LtvThresholds(currency, round(statistics.median(values)), round(deciles[int(TOP_QUANTILE * 10) - 1]))


def ltv_band(shopper: Shopper, bands: LtvThresholds | None) -> LtvBand | None:
    """The customer's band at the host, None when unknown (no bands yet, no orders, other currency)."""
    if bands is None or shopper.lifetime_value is None or shopper.currency != bands.currency:
        return None
    if shopper.lifetime_value >= bands.top_minor:
        return LtvBand.top
    if shopper.lifetime_value >= bands.median_minor:
        return LtvBand.middle
    return LtvBand.low


def placement_refusal(placement: str, shopper: Shopper, band: LtvBand | None) -> str | None:
    """Whether the customer belongs at this placement at all (asked once per call)."""
    if placement == WIN_BACK and shopper.risk_level not in WIN_BACK_LEVELS:
        return "placement_not_at_risk"
    if placement == APPRECIATION and band is not LtvBand.top:
        return "placement_not_top_customer"
    return None


def placement_kind_refusal(placement: str, offer_kind: str) -> str | None:
    """Appreciation shows gifts and early access only."""
    if placement == APPRECIATION and offer_kind not in APPRECIATION_KINDS:
        return "placement_kind"
    return None


def risk_targeting_refusal(risk_levels: Sequence[str], shopper: Shopper) -> str | None:
    """An offer aimed at some risk levels is for customers at one of them."""
    if risk_levels and (shopper.risk_level is None or shopper.risk_level not in risk_levels):
        return "targeting_risk_level"
    return None


def band_targeting_refusal(bands: Sequence[str], band: LtvBand | None) -> str | None:
    """An offer aimed at some lifetime-value bands is for customers in one of them."""
    if bands and (band is None or band not in bands):
        return "targeting_lifetime_value_band"
    return None
