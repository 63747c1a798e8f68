"""The defection-signal model: expected gaps, shrinkage toward the shop, levels and their thresholds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from partners import churn_risk
from partners.churn_risk import OrderRhythm, RiskLevel

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def rhythm(orders: int, every_days: float, last_days_ago: float) -> OrderRhythm:
    last = NOW - timedelta(days=last_days_ago)
    return OrderRhythm(orders, last - timedelta(days=every_days * (orders - 1)), last)


def test_one_order_customers_get_the_shops_typical_gap() -> None:
    assert churn_risk.own_mean_gap_days(rhythm(1, 0, 10)) is None
    assert churn_risk.expected_interval_days(rhythm(1, 0, 10), 45.0) == 45.0


def test_repeat_customers_are_shrunk_toward_the_shop_by_one_gap() -> None:
    # Two gaps of 30 days and the shop's 90: (2·30 + 90) / 3 = 50.
    assert churn_risk.expected_interval_days(rhythm(3, 30, 0), 90.0) == pytest.approx(50.0)
    # Many orders: the customer's own rhythm dominates.
    assert churn_risk.expected_interval_days(rhythm(41, 30, 0), 90.0) == pytest.approx((40 * 30 + 90) / 41)


def test_expected_gaps_are_clamped_to_a_week_and_two_years() -> None:
    assert churn_risk.expected_interval_days(rhythm(10, 0.1, 0), 1.0) == churn_risk.MIN_INTERVAL_DAYS
    assert churn_risk.expected_interval_days(rhythm(2, 5000, 0), 5000.0) == churn_risk.MAX_INTERVAL_DAYS


def test_the_shops_typical_gap_is_the_median_once_it_has_enough_repeat_customers() -> None:
    few = [10.0] * (churn_risk.MIN_REPEAT_CUSTOMERS - 1)
    assert churn_risk.typical_interval_days(few) == churn_risk.DEFAULT_TYPICAL_DAYS
    gaps = [20.0] * 5 + [40.0] + [300.0] * 5
    assert churn_risk.typical_interval_days(gaps) == 40.0


@pytest.mark.parametrize(
    ("silent", "level"),
    [
        (0, RiskLevel.active),
        (14.9, RiskLevel.active),
        (15, RiskLevel.cooling),
        (24.9, RiskLevel.cooling),
        (25, RiskLevel.at_risk),
        (39.9, RiskLevel.at_risk),
        (40, RiskLevel.lapsed),
    ],
)
def test_levels_start_at_documented_multiples_of_the_expected_gap(silent: float, level: RiskLevel) -> None:
    assert churn_risk.level_for(silent, 10.0) == level


def test_two_years_of_silence_is_lapsed_whatever_the_rhythm() -> None:
    assert churn_risk.level_for(729, 700.0) == RiskLevel.active
    assert churn_risk.level_for(730, 700.0) == RiskLevel.lapsed


def test_assess_reports_how_overdue_a_customer_is() -> None:
    found = churn_risk.assess(rhythm(3, 45, 150), 60.0, NOW)
    assert found.expected_interval_days == pytest.approx(50.0)
    assert found.days_silent == pytest.approx(150.0)
    assert found.days_overdue == pytest.approx(100.0)
    assert found.overdue_ratio == pytest.approx(3.0)
    assert found.level == RiskLevel.at_risk
    not_due = churn_risk.assess(rhythm(3, 45, 10), 60.0, NOW)
    assert not_due.days_overdue == 0.0 and not_due.level == RiskLevel.active
