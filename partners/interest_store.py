"""Interest profiles as stored: their tables, reading a profile back, and folding in one new order.

The derivation itself (weights, decay, price bands, lifetime value) is pure and lives in
`partners.interests`; this module maps it to `customer_profiles` and `customer_interests`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKeyConstraint, Index
from sqlmodel import Field, Session, SQLModel, col

from partners import churn_risk, retention_baselines
from partners.db import UTCDateTime, owned, utcnow
from partners.interests import CurrencySpend, InterestState, OrderFacts, PriceStats, ProfileState, apply_order

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
