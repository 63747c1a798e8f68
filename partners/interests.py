"""Interest profiles derived from purchases: pure functions (stored by `partners.interest_store`).

Each order adds, for every category and every format it contains, a weight of one that
halves every `HALF_LIFE`. Weights are kept decayed to one reference time per customer (the
latest order seen), so the affinity of a category — its share of the customer's total
weight — changes only when an order arrives, and orders may arrive in any order: applying
them one by one gives the profile that deriving it from all of them at once gives.
See docs/customers.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

HALF_LIFE = timedelta(days=180)
LTV_HORIZON_DAYS = 365
# Rates come from at least this many days, so one recent order does not read as a habit.
MIN_OBSERVATION_DAYS = 365
# Prior belief that a customer is still buying, before looking at how long they have been silent.
PRIOR_ACTIVE = 0.9
_DAY = 86400.0


@dataclass(frozen=True)
class LineFacts:
    category_id: str
    unit_price_minor: int
    quantity: int
    channel: str


@dataclass(frozen=True)
class OrderFacts:
    ordered_at: datetime
    currency: str
    lines: tuple[LineFacts, ...]

    @property
    def total_minor(self) -> int:
        return sum(line.unit_price_minor * line.quantity for line in self.lines)


@dataclass(frozen=True)
class PriceStats:
    """Unit prices seen in one category and currency, summarized in log space."""

    count: int = 0
    log_sum: float = 0.0
    log_sq_sum: float = 0.0
    low: int = 0
    high: int = 0

    def add(self, price_minor: int) -> PriceStats:
        logged = math.log(price_minor)
        if self.count == 0:
            return PriceStats(1, logged, logged * logged, price_minor, price_minor)
        return PriceStats(
            self.count + 1,
            self.log_sum + logged,
            self.log_sq_sum + logged * logged,
            min(self.low, price_minor),
            max(self.high, price_minor),
        )

    def band(self) -> tuple[int, int]:
        """The typical band: geometric mean times/divided by one geometric standard deviation."""
        mean = self.log_sum / self.count
        spread = math.sqrt(max(0.0, self.log_sq_sum / self.count - mean * mean))
        low = max(self.low, round(math.exp(mean - spread)))
        high = min(self.high, round(math.exp(mean + spread)))
        return min(low, high), max(low, high)


@dataclass(frozen=True)
class CurrencySpend:
    orders: int
    minor: int


@dataclass(frozen=True)
class InterestState:
    weight: float
    order_count: int
    last_order_at: datetime
    prices: Mapping[str, PriceStats]


@dataclass(frozen=True)
class ProfileState:
    decay_ref: datetime
    order_count: int
    first_order_at: datetime
    last_order_at: datetime
    spend: Mapping[str, CurrencySpend]
    format_weights: Mapping[str, float]
    interests: Mapping[str, InterestState]

    @property
    def currency(self) -> str:
        """The currency the customer orders in most (ties: alphabetical); bands and LTV use it."""
        if len(self.spend) == 1:  # the usual case, asked for once per category when storing
            return next(iter(self.spend))
        return min(self.spend, key=lambda code: (-self.spend[code].orders, code))

    @property
    def preferred_format(self) -> str:
        """The format with the most recency-weighted orders (ties: alphabetical)."""
        if len(self.format_weights) == 1:
            return next(iter(self.format_weights))
        return min(self.format_weights, key=lambda name: (-self.format_weights[name], name))

    def affinities(self) -> dict[str, float]:
        """Each category's share (0–1) of the customer's recency-weighted orders."""
        total = sum(interest.weight for interest in self.interests.values())
        return {category: interest.weight / total for category, interest in self.interests.items()}

    def price_band(self, category_id: str) -> tuple[int, int] | None:
        """The typical unit price band in the profile currency, if the customer paid for such items."""
        stats = self.interests[category_id].prices.get(self.currency)
        return stats.band() if stats is not None else None


def _decay(weight: float, since: datetime, until: datetime, half_life: timedelta) -> float:
    return weight * math.pow(2.0, -(until - since).total_seconds() / half_life.total_seconds())


def apply_order(state: ProfileState | None, order: OrderFacts, half_life: timedelta = HALF_LIFE) -> ProfileState:
    """The profile after one more order, whenever that order happened."""
    if state is None:
        return _first_profile(order)
    ref = max(state.decay_ref, order.ordered_at)
    scale = _decay(1.0, state.decay_ref, ref, half_life)
    contribution = _decay(1.0, order.ordered_at, ref, half_life)

    interests = {category: replace(i, weight=i.weight * scale) for category, i in state.interests.items()}
    for category in sorted({line.category_id for line in order.lines}):
        interests[category] = _add_to_interest(interests.get(category), order, category, contribution)

    formats = {name: weight * scale for name, weight in state.format_weights.items()}
    for channel in {line.channel for line in order.lines}:
        formats[channel] = formats.get(channel, 0.0) + contribution

    spend = dict(state.spend)
    before = spend.get(order.currency, CurrencySpend(0, 0))
    spend[order.currency] = CurrencySpend(before.orders + 1, before.minor + order.total_minor)
    return ProfileState(
        decay_ref=ref,
        order_count=state.order_count + 1,
        first_order_at=min(state.first_order_at, order.ordered_at),
        last_order_at=max(state.last_order_at, order.ordered_at),
        spend=spend,
        format_weights=formats,
        interests=interests,
    )


def _first_profile(order: OrderFacts) -> ProfileState:
    """`apply_order` to no profile, without its decay arithmetic: every weight is exactly 1."""
    at = order.ordered_at
    interests = {
        category: _add_to_interest(None, order, category, 1.0)
        for category in sorted({line.category_id for line in order.lines})
    }
    formats = dict.fromkeys({line.channel for line in order.lines}, 1.0)
    spend = {order.currency: CurrencySpend(1, order.total_minor)}
    return ProfileState(at, 1, at, at, spend, formats, interests)


def _add_to_interest(
    interest: InterestState | None, order: OrderFacts, category: str, contribution: float
) -> InterestState:
    prices = dict(interest.prices) if interest else {}
    for line in order.lines:
        if line.category_id == category and line.unit_price_minor > 0:
            prices[order.currency] = prices.get(order.currency, PriceStats()).add(line.unit_price_minor)
    if interest is None:
        return InterestState(contribution, 1, order.ordered_at, prices)
    return InterestState(
        interest.weight + contribution, interest.order_count + 1, max(interest.last_order_at, order.ordered_at), prices
    )


def derive(orders: Iterable[OrderFacts], half_life: timedelta = HALF_LIFE) -> ProfileState | None:
    """The profile of a customer with these orders (None without any)."""
    state: ProfileState | None = None
    for order in sorted(orders, key=lambda o: o.ordered_at):
        state = apply_order(state, order, half_life)
    return state


@dataclass(frozen=True)
class LifetimeValue:
    currency: str
    historic_minor: int
    expected_future_minor: int
    horizon_days: int
    orders_per_year: float
    probability_active: float

    @property
    def total_minor(self) -> int:
        return self.historic_minor + self.expected_future_minor


def lifetime_value(state: ProfileState, now: datetime, horizon_days: int = LTV_HORIZON_DAYS) -> LifetimeValue:
    """Historic spend plus expected spend over the horizon, in the profile currency.

    expected = average order value × orders per day × horizon × P(still active), where the
    rate is orders over max(days since the first order, MIN_OBSERVATION_DAYS), and
    P(active) weighs a prior of PRIOR_ACTIVE against how unlikely the current silence
    would be for an active customer ordering at that rate (a Poisson process).
    """
    spent = state.spend[state.currency]
    average_order = spent.minor / spent.orders
    observed_days = max((now - state.first_order_at).total_seconds() / _DAY, MIN_OBSERVATION_DAYS)
    rate = state.order_count / observed_days
    silent_days = max(0.0, (now - state.last_order_at).total_seconds() / _DAY)
    silence_if_active = math.exp(-rate * silent_days)
    active = PRIOR_ACTIVE * silence_if_active / (PRIOR_ACTIVE * silence_if_active + (1 - PRIOR_ACTIVE))
    return LifetimeValue(
        currency=state.currency,
        historic_minor=spent.minor,
        expected_future_minor=round(average_order * rate * horizon_days * active),
        horizon_days=horizon_days,
        orders_per_year=rate * 365,
        probability_active=active,
    )
