"""Retention rules of the exchange (pure): bands, placements by moment, risk and band targeting."""

from __future__ import annotations

import pytest

from partners import retention_rules as rules
from partners.churn_risk import RiskLevel
from partners.retention_rules import LtvBand, LtvThresholds, Shopper

BANDS = LtvThresholds("GBP", 10_000, 50_000)


def test_bands_need_enough_customers_and_follow_the_percentiles() -> None:
    assert rules.thresholds("GBP", list(range(rules.MIN_CUSTOMERS_FOR_BANDS - 1))) is None
    found = rules.thresholds("GBP", [100 * i for i in range(1, 101)])
    assert found is not None and found.median_minor == 5050 and 9000 <= found.top_minor <= 9100


@pytest.mark.parametrize(
    ("value", "currency", "band"),
    [(60_000, "GBP", LtvBand.top), (20_000, "GBP", LtvBand.middle), (500, "GBP", LtvBand.low), (60_000, "EUR", None)],
)
def test_a_customers_band_is_relative_to_the_host(value: int, currency: str, band: LtvBand | None) -> None:
    assert rules.ltv_band(Shopper(RiskLevel.active, value, currency), BANDS) == band
    assert rules.ltv_band(Shopper(RiskLevel.active, value, currency), None) is None


def test_win_back_is_for_customers_at_risk_or_lapsed_only() -> None:
    for level in (RiskLevel.at_risk, RiskLevel.lapsed):
        assert rules.placement_refusal("win_back", Shopper(level, 1, "GBP"), None) is None
    for other in (RiskLevel.active, RiskLevel.cooling, None):
        assert rules.placement_refusal("win_back", Shopper(other, 1, "GBP"), None) == "placement_not_at_risk"
    assert rules.placement_refusal("email", Shopper(RiskLevel.active, 1, "GBP"), None) is None


def test_appreciation_is_for_top_customers_and_gifts_or_early_access() -> None:
    top = Shopper(RiskLevel.active, 60_000, "GBP")
    assert rules.placement_refusal("appreciation", top, LtvBand.top) is None
    assert rules.placement_refusal("appreciation", top, LtvBand.middle) == "placement_not_top_customer"
    assert rules.placement_kind_refusal("appreciation", "free_gift") is None
    assert rules.placement_kind_refusal("appreciation", "early_access") is None
    assert rules.placement_kind_refusal("appreciation", "percent_off") == "placement_kind"
    assert rules.placement_kind_refusal("win_back", "percent_off") is None


def test_offers_aimed_at_levels_or_bands_reach_only_those() -> None:
    risky = Shopper(RiskLevel.at_risk, 1, "GBP")
    assert rules.risk_targeting_refusal([], risky) is None
    assert rules.risk_targeting_refusal(["at_risk", "lapsed"], risky) is None
    assert rules.risk_targeting_refusal(["lapsed"], risky) == "targeting_risk_level"
    assert rules.risk_targeting_refusal(["active"], Shopper(None, None, None)) == "targeting_risk_level"
    assert rules.band_targeting_refusal(["top"], LtvBand.top) is None
    assert rules.band_targeting_refusal(["top"], None) == "targeting_lifetime_value_band"
