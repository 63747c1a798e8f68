"""Interest profiles derived from purchases: pure functions, and their incremental upkeep.

Each order adds, for every category and every format it contains, a weight of one that
halves every `HALF_LIFE`. Weights are kept decayed to one reference time per customer (the
latest order seen), so the affinity of a category — its share of the customer's total
weight — changes only when an order arrives, and orders may arrive in any order: applying
them one by one gives the profile that deriving it from all of them at once gives.
See docs/customers.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKeyConstraint, Index
from sqlmodel import Field, Session, SQLModel, col

from partners import churn_risk, retention_baselines
from partners.db import UTCDateTime, owned, utcnow

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


# --- stored profiles ------------------------------------------------------------------------

_CUSTOMER_FK = (["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"])


class CustomerProfile(SQLModel, table=True):
    __tablename__ = "customer_profiles"
    __table_args__ = (
        ForeignKeyConstraint(*_CUSTOMER_FK, ondelete="CASCADE"),
        # The churn-risk list reads one level of one tenant in customer order.
        Index("ix_customer_profiles_risk", "tenant_id", "risk_level", "customer_id"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40)
    customer_id: str = Field(primary_key=True, max_length=40)
    decay_ref: datetime = Field(sa_type=UTCDateTime)
    order_count: int
    first_order_at: datetime = Field(sa_type=UTCDateTime)
    last_order_at: datetime = Field(sa_type=UTCDateTime)
    currency: str = Field(max_length=3)
    # {currency: [orders, spend in minor units]}
    spend: dict[str, list[int]] = Field(default_factory=dict, sa_type=JSON)
    format_weights: dict[str, float] = Field(default_factory=dict, sa_type=JSON)
    preferred_format: str = Field(max_length=20)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Defection signals (partners.churn_risk), as of `risk_assessed_at`: set with every order and daily.
    expected_interval_days: float | None = None
    risk_level: str | None = Field(default=None, max_length=20)
    risk_assessed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CustomerInterest(SQLModel, table=True):
    """One category a customer bought in; what the exchange ranks offers by."""

    __tablename__ = "customer_interests"
    __table_args__ = (ForeignKeyConstraint(*_CUSTOMER_FK, ondelete="CASCADE"),)

    tenant_id: str = Field(primary_key=True, max_length=40)
    customer_id: str = Field(primary_key=True, max_length=40)
    category_id: str = Field(primary_key=True, max_length=100)
    weight: float  # decayed to the profile's decay_ref
    affinity: float  # share of the customer's total weight, 0–1
    order_count: int
    last_order_at: datetime = Field(sa_type=UTCDateTime)
    # {currency: [count, sum of log prices, sum of squared log prices, lowest, highest]}
    prices: dict[str, list[float]] = Field(default_factory=dict, sa_type=JSON)
    price_currency: str | None = Field(default=None, max_length=3)
    price_low_minor: int | None = Field(default=None, sa_type=BigInteger)
    price_high_minor: int | None = Field(default=None, sa_type=BigInteger)


def _interest_rows(session: Session, tenant_id: str, customer_id: str) -> Sequence[CustomerInterest]:
    query = owned(CustomerInterest, tenant_id).where(col(CustomerInterest.customer_id) == customer_id)
    return session.exec(query.order_by(col(CustomerInterest.category_id))).all()


def load_profile(session: Session, tenant_id: str, customer_id: str) -> ProfileState | None:
    """The stored profile of a customer, or None before its first order."""
    profile = session.get(CustomerProfile, (tenant_id, customer_id))
    if profile is None:
        return None
    rows = _interest_rows(session, tenant_id, customer_id)
    return stored_state(
        StoredProfile(
            profile.decay_ref,
            profile.order_count,
            profile.first_order_at,
            profile.last_order_at,
            profile.spend,
            profile.format_weights,
        ),
        [StoredInterest(r.category_id, r.weight, r.order_count, r.last_order_at, r.prices) for r in rows],
    )


@dataclass(frozen=True, slots=True)
class StoredProfile:
    """The columns of a `customer_profiles` row the state is built from (read without the ORM)."""

    decay_ref: datetime
    order_count: int
    first_order_at: datetime
    last_order_at: datetime
    spend: Mapping[str, Sequence[int]]
    format_weights: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class StoredInterest:
    """The columns of a `customer_interests` row the state is built from."""

    category_id: str
    weight: float
    order_count: int
    last_order_at: datetime
    prices: Mapping[str, Sequence[float]]


def stored_state(profile: StoredProfile, rows: Iterable[StoredInterest]) -> ProfileState:
    """The profile state held in a stored profile row and its interest rows."""
    interests = {
        row.category_id: InterestState(
            row.weight,
            row.order_count,
            row.last_order_at,
            {code: PriceStats(int(s[0]), s[1], s[2], int(s[3]), int(s[4])) for code, s in row.prices.items()},
        )
        for row in rows
    }
    return ProfileState(
        decay_ref=profile.decay_ref,
        order_count=profile.order_count,
        first_order_at=profile.first_order_at,
        last_order_at=profile.last_order_at,
        spend={code: CurrencySpend(int(v[0]), int(v[1])) for code, v in profile.spend.items()},
        format_weights=dict(profile.format_weights),
        interests=interests,
    )


def risk_values(state: ProfileState, typical_days: float, now: datetime) -> dict[str, Any]:
    """The defection-signal columns of a profile row, given the shop's typical gap."""
    rhythm = churn_risk.OrderRhythm(state.order_count, state.first_order_at, state.last_order_at)
    assessment = churn_risk.assess(rhythm, typical_days, now)
    return {
        "expected_interval_days": assessment.expected_interval_days,
        "risk_level": str(assessment.level),
        "risk_assessed_at": now,
    }


def stored_values(
    tenant_id: str, customer_id: str, state: ProfileState, now: datetime, typical_days: float
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The column values of a state's profile row (defection signals included) and of its interest rows."""
    profile = {
        "tenant_id": tenant_id,
        "customer_id": customer_id,
        "decay_ref": state.decay_ref,
        "order_count": state.order_count,
        "first_order_at": state.first_order_at,
        "last_order_at": state.last_order_at,
        "currency": state.currency,
        "spend": {code: [s.orders, s.minor] for code, s in state.spend.items()},
        "format_weights": dict(state.format_weights),
        "preferred_format": state.preferred_format,
        "updated_at": now,
        **risk_values(state, typical_days, now),
    }
    affinities = state.affinities()
    rows = []
    for category, interest in state.interests.items():
        band = state.price_band(category)
        rows.append(
            {
                "tenant_id": tenant_id,
                "customer_id": customer_id,
                "category_id": category,
                "weight": interest.weight,
                "affinity": affinities[category],
                "order_count": interest.order_count,
                "last_order_at": interest.last_order_at,
                "prices": {c: [p.count, p.log_sum, p.log_sq_sum, p.low, p.high] for c, p in interest.prices.items()},
                "price_currency": state.currency if band else None,
                "price_low_minor": band[0] if band else None,
                "price_high_minor": band[1] if band else None,
            }
        )
    return profile, rows


def record_order(session: Session, tenant_id: str, customer_id: str, order: OrderFacts) -> ProfileState:
    """Fold one new order into the stored profile (the caller holds the customer's row lock)."""
    state = apply_order(load_profile(session, tenant_id, customer_id), order)
    typical = retention_baselines.typical_days(session, tenant_id)
    profile_values, interest_values = stored_values(tenant_id, customer_id, state, utcnow(), typical)
    profile = session.get(CustomerProfile, (tenant_id, customer_id)) or CustomerProfile(**profile_values)
    for name, value in profile_values.items():
        setattr(profile, name, value)
    session.add(profile)
    existing = {row.category_id: row for row in _interest_rows(session, tenant_id, customer_id)}
    for values in interest_values:
        row = existing.get(values["category_id"]) or CustomerInterest(**values)
        for name, value in values.items():
            setattr(row, name, value)
        session.add(row)
    session.flush()
    return state
