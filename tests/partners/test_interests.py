"""Interest profiles: affinities with recency decay, price bands, formats and lifetime value."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session

from partners import interest_store, purchases
from partners.customers import Customer
from partners.db import owned
from partners.interests import HALF_LIFE, LineFacts, OrderFacts, ProfileState, apply_order, derive, lifetime_value
from partners.purchases import Channel, LineInput, PurchaseInput

T0 = datetime(2025, 1, 1, tzinfo=UTC)
BEDS, TOYS, FOOD = "cat_dog_beds", "cat_dog_toys", "cat_dog_food"


def order(days: float, *lines: tuple[str, int], currency: str = "EUR", channel: str = "physical") -> OrderFacts:
    return OrderFacts(
        T0 + timedelta(days=days), currency, tuple(LineFacts(cat, price, 1, channel) for cat, price in lines)
    )


def profile(*orders: OrderFacts) -> ProfileState:
    state = derive(orders)
    assert state is not None
    return state


def test_one_order_gives_equal_affinity_to_its_categories() -> None:
    state = profile(order(0, (BEDS, 5000), (TOYS, 900)))
    assert state.affinities() == pytest.approx({BEDS: 0.5, TOYS: 0.5})
    assert state.order_count == 1
    assert state.spend["EUR"].minor == 5900


def test_an_order_half_a_life_older_weighs_half() -> None:
    state = profile(order(0, (BEDS, 5000)), order(HALF_LIFE.days, (TOYS, 900)))
    # BEDS decayed to 0.5 by the time of the TOYS order: shares 1/3 and 2/3.
    assert state.affinities() == pytest.approx({BEDS: 1 / 3, TOYS: 2 / 3})


def test_affinities_do_not_drift_while_no_order_arrives() -> None:
    state = profile(order(0, (BEDS, 5000)), order(30, (TOYS, 900)))
    assert state.affinities() == pytest.approx(profile(order(0, (BEDS, 5000)), order(30, (TOYS, 900))).affinities())
    assert sum(state.affinities().values()) == pytest.approx(1.0)


def test_several_lines_of_one_category_count_as_one_order_for_affinity() -> None:
    state = profile(order(0, (BEDS, 5000), (BEDS, 7000), (TOYS, 900)))
    assert state.affinities() == pytest.approx({BEDS: 0.5, TOYS: 0.5})
    assert state.interests[BEDS].order_count == 1


def test_price_band_is_the_geometric_spread_of_unit_prices() -> None:
    single = profile(order(0, (BEDS, 5000)))
    assert single.price_band(BEDS) == (5000, 5000)
    spread = profile(order(0, (BEDS, 4000)), order(1, (BEDS, 9000)))
    low, high = spread.price_band(BEDS) or (0, 0)
    assert (low, high) == (4000, 9000)  # geometric mean 6000, one factor of 1.5 either side
    free = profile(order(0, (TOYS, 0)))
    assert free.price_band(TOYS) is None


def test_price_band_uses_the_currency_ordered_in_most() -> None:
    state = profile(
        order(0, (BEDS, 5000), currency="GBP"), order(1, (BEDS, 7000)), order(2, (BEDS, 7000)), order(3, (TOYS, 100))
    )
    assert state.currency == "EUR"
    assert state.price_band(BEDS) == (7000, 7000)


def test_preferred_format_follows_recent_orders() -> None:
    state = profile(
        order(0, (BEDS, 100), channel="physical"),
        order(1, (BEDS, 100), channel="physical"),
        order(400, (FOOD, 100), channel="subscription"),
    )
    assert state.preferred_format == "subscription"


orders_st = st.lists(
    st.builds(
        lambda days, cat, price, currency, channel: order(days, (cat, price), currency=currency, channel=channel),
        st.floats(min_value=0, max_value=1500, allow_nan=False),
        st.sampled_from([BEDS, TOYS, FOOD]),
        st.integers(min_value=0, max_value=100_000),
        st.sampled_from(["EUR", "GBP"]),
        st.sampled_from([c.value for c in Channel]),
    ),
    min_size=1,
    max_size=12,
)


@given(orders=orders_st, data=st.data())
def test_incremental_updates_equal_deriving_from_scratch_in_any_arrival_order(
    orders: list[OrderFacts], data: st.DataObject
) -> None:
    arrival = data.draw(st.permutations(orders))
    state: ProfileState | None = None
    for item in arrival:
        state = apply_order(state, item)
    assert state is not None
    expected = profile(*orders)
    assert state.order_count == expected.order_count
    assert state.spend == expected.spend
    assert (state.first_order_at, state.last_order_at) == (expected.first_order_at, expected.last_order_at)
    assert state.affinities() == pytest.approx(expected.affinities())
    for category in expected.interests:
        got, want = state.price_band(category), expected.price_band(category)
        assert (got is None) == (want is None)
        if got and want:
            assert got == pytest.approx(want, abs=1)


lines_st = st.lists(
    st.builds(
        LineFacts,
        st.sampled_from([BEDS, TOYS, FOOD]),
        st.integers(min_value=0, max_value=100_000),
        st.integers(min_value=1, max_value=5),
        st.sampled_from([c.value for c in Channel]),
    ),
    min_size=1,
    max_size=6,
)


@given(
    order=st.builds(
        lambda days, currency, lines: OrderFacts(T0 + timedelta(days=days), currency, tuple(lines)),
        st.floats(min_value=0, max_value=1500, allow_nan=False),
        st.sampled_from(["EUR", "GBP"]),
        lines_st,
    )
)
def test_a_first_order_gives_the_profile_the_full_decay_arithmetic_gives(order: OrderFacts) -> None:
    # apply_order skips the decay arithmetic for a first order; folding the order into an
    # empty profile at its own time takes the general path, and must agree to the last bit.
    empty = ProfileState(order.ordered_at, 0, order.ordered_at, order.ordered_at, {}, {}, {})
    first, general = apply_order(None, order), apply_order(empty, order)
    assert first == general
    assert first.currency == general.currency and first.preferred_format == general.preferred_format


def test_lifetime_value_of_a_regular_customer() -> None:
    monthly = [order(30 * i, (FOOD, 3000)) for i in range(12)]
    state = profile(*monthly)
    now = state.last_order_at + timedelta(days=10)
    value = lifetime_value(state, now)
    assert value.historic_minor == 36_000
    assert value.orders_per_year == pytest.approx(12 * 365 / 365, rel=0.05)
    # About a year's worth of orders again, discounted for being quiet ten days.
    assert 25_000 < value.expected_future_minor < 36_000
    assert value.total_minor == value.historic_minor + value.expected_future_minor


def test_lifetime_value_of_a_lapsed_customer_is_mostly_history() -> None:
    state = profile(*[order(30 * i, (FOOD, 3000)) for i in range(12)])
    value = lifetime_value(state, state.last_order_at + timedelta(days=400))
    assert value.probability_active < 0.02
    assert value.expected_future_minor < 300


def test_lifetime_value_of_a_single_recent_order() -> None:
    state = profile(order(0, (BEDS, 10_000)))
    value = lifetime_value(state, T0 + timedelta(days=1), horizon_days=365)
    # One order seen over at least a year: about one more order in the next year.
    assert value.expected_future_minor == pytest.approx(10_000 * value.probability_active, abs=50)
    assert math.isclose(value.orders_per_year, 1.0)


def test_recording_purchases_updates_the_stored_profile(
    session: Session, make_customer: Callable[..., Customer]
) -> None:
    customer = make_customer(external_id="c1")
    tenant_id = customer.tenant_id
    first = PurchaseInput("o-1", T0, "EUR", (LineInput(BEDS, 5000, 1, Channel.physical),))
    second = PurchaseInput(
        "o-2",
        T0 + HALF_LIFE,
        "EUR",
        (LineInput(TOYS, 900, 2, Channel.physical), LineInput(FOOD, 3000, 1, Channel.subscription)),
    )
    purchases.record_purchase(session, tenant_id, "c1", first)
    purchases.record_purchase(session, tenant_id, "c1", second)
    session.commit()
    stored = interest_store.load_profile(session, tenant_id, customer.id)
    assert stored is not None
    assert stored.affinities() == pytest.approx({BEDS: 0.2, TOYS: 0.4, FOOD: 0.4})
    assert stored.spend["EUR"].minor == 5000 + 1800 + 3000
    rows = {r.category_id: r for r in session.exec(owned(interest_store.CustomerInterest, tenant_id)).all()}
    assert rows[TOYS].affinity == pytest.approx(0.4)
    assert (rows[TOYS].price_low_minor, rows[TOYS].price_high_minor, rows[TOYS].price_currency) == (900, 900, "EUR")
