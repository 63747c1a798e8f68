"""Lift and its intervals: known cases, the too-small rule, the verdicts; the holdout draw."""

from __future__ import annotations

import pytest

from partners import holdouts, lift
from partners.errors import Invalid
from partners.lift import Group, Verdict


def group(customers: int, repeaters: int, spend_each: int = 1000) -> Group:
    return Group(customers, repeaters, [spend_each] * repeaters + [0] * (customers - repeaters))


def test_rate_difference_and_its_wald_interval() -> None:
    found = lift.rate_difference(group(400, 200), group(400, 120))
    assert found.estimate == pytest.approx(0.2)
    se = (0.5 * 0.5 / 400 + 0.3 * 0.7 / 400) ** 0.5
    assert found.low == pytest.approx(0.2 - 1.959964 * se) and found.high == pytest.approx(0.2 + 1.959964 * se)


def test_a_clear_lift_is_called_and_a_null_one_is_not() -> None:
    clear = lift.lift(group(400, 200), group(400, 120))
    assert clear.verdict == Verdict.more_repeat_purchases and clear.relative == pytest.approx(0.5 / 0.3 - 1)
    assert clear.spend_per_customer is not None and clear.spend_per_customer.estimate == pytest.approx(200.0)
    assert "bought again more" in clear.message
    null = lift.lift(group(300, 100), group(300, 98))
    assert null.verdict == Verdict.no_clear_difference and "includes zero" in null.message
    worse = lift.lift(group(400, 100), group(400, 200))
    assert worse.verdict == Verdict.fewer_repeat_purchases


@pytest.mark.parametrize(
    ("shown", "held"),
    [(group(1000, 500), group(99, 30)), (group(1000, 500), group(200, 5)), (group(1000, 995), group(200, 50))],
)
def test_small_samples_are_said_plainly_and_get_no_interval(shown: Group, held: Group) -> None:
    found = lift.lift(shown, held)
    assert found.verdict == Verdict.too_small and found.repeat_rate is None and found.spend_per_customer is None
    assert found.message.startswith("Too few customers to tell")


@pytest.mark.parametrize("percent", [-1, 50.01, 51, 100, "ten", float("nan"), 12.345])
def test_holdout_shares_outside_0_to_50_percent_are_refused(percent: float | str) -> None:
    with pytest.raises(Invalid) as refused:
        holdouts.share_bps(percent)
    assert refused.value.param == "share_percent"


def test_shares_in_range_become_basis_points() -> None:
    assert [holdouts.share_bps(p) for p in (0, 10, 12.5, 50)] == [0, 1000, 1250, 5000]


def test_the_draw_is_stable_keyed_and_uniform() -> None:
    key, other = b"k" * 32, b"o" * 32
    draws = [holdouts.bucket(key, "ten_a", "hld_1", f"cus_{i}") for i in range(20_000)]
    assert draws[:50] == [holdouts.bucket(key, "ten_a", "hld_1", f"cus_{i}") for i in range(50)]
    assert draws[:50] != [holdouts.bucket(other, "ten_a", "hld_1", f"cus_{i}") for i in range(50)]
    assert draws[:50] != [holdouts.bucket(key, "ten_a", "hld_2", f"cus_{i}") for i in range(50)]
    held = sum(d < 1000 for d in draws) / len(draws)
    assert abs(held - 0.10) < 4 * (0.1 * 0.9 / len(draws)) ** 0.5
    # Raising the share keeps everyone held out before in the held-out group.
    assert all(holdouts.is_held_out(key, "ten_a", "hld_1", f"cus_{i}", 2000) for i in range(500) if draws[i] < 1000)
