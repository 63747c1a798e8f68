"""What the API shows of customers, purchases and interest profiles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from partners.customers import Customer
from partners.interests import ProfileState, lifetime_value
from partners.purchases import Purchase, PurchaseLine


class CustomerOut(BaseModel):
    id: str
    external_id: str
    has_email: bool = Field(description="Whether we hold the keyed hash of an email")
    email: str | None = Field(description="Only when you asked us to keep the address (store_email)")
    created_at: datetime
    updated_at: datetime


def customer_out(customer: Customer, email: str | None) -> CustomerOut:
    return CustomerOut(
        id=customer.id,
        external_id=customer.external_id,
        has_email=customer.email_hash is not None,
        email=email,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )


class LineOut(BaseModel):
    line_no: int
    category_id: str
    unit_price_minor: int
    quantity: int
    channel: str


class PurchaseOut(BaseModel):
    id: str
    order_id: str
    ordered_at: datetime
    currency: str
    total_minor: int
    lines: list[LineOut]
    created_at: datetime


def purchase_out(purchase: Purchase, lines: Sequence[PurchaseLine]) -> PurchaseOut:
    return PurchaseOut(
        id=purchase.id,
        order_id=purchase.order_id,
        ordered_at=purchase.ordered_at,
        currency=purchase.currency,
        total_minor=purchase.total_minor,
        lines=[
            LineOut(
                line_no=x.line_no,
                category_id=x.category_id,
                unit_price_minor=x.unit_price_minor,
                quantity=x.quantity,
                channel=x.channel,
            )
            for x in lines
        ],
        created_at=purchase.created_at,
    )


class PriceBandOut(BaseModel):
    currency: str
    low_minor: int
    high_minor: int


class InterestOut(BaseModel):
    category_id: str
    affinity: float = Field(description="Share (0–1) of the customer's recency-weighted orders")
    order_count: int
    last_order_at: datetime
    price_band: PriceBandOut | None = Field(description="Typical unit price paid, in the profile currency")


class SpendOut(BaseModel):
    currency: str
    orders: int
    amount_minor: int


class LifetimeValueOut(BaseModel):
    currency: str
    historic_minor: int
    expected_future_minor: int
    total_minor: int
    horizon_days: int
    orders_per_year: float
    probability_active: float


class ProfileOut(BaseModel):
    external_id: str
    order_count: int
    first_order_at: datetime | None
    last_order_at: datetime | None
    days_since_last_order: int | None
    preferred_format: str | None
    currency: str | None = Field(description="The currency the customer orders in most")
    total_spend: list[SpendOut]
    lifetime_value: LifetimeValueOut | None
    interests: list[InterestOut] = Field(description="Highest affinity first")


def profile_out(external_id: str, state: ProfileState | None, now: datetime, horizon_days: int) -> ProfileOut:
    if state is None:
        return ProfileOut(
            external_id=external_id,
            order_count=0,
            first_order_at=None,
            last_order_at=None,
            days_since_last_order=None,
            preferred_format=None,
            currency=None,
            total_spend=[],
            lifetime_value=None,
            interests=[],
        )
    value = lifetime_value(state, now, horizon_days)
    affinities = state.affinities()
    interests = []
    for category, interest in sorted(state.interests.items(), key=lambda item: (-affinities[item[0]], item[0])):
        band = state.price_band(category)
        price_band = PriceBandOut(currency=state.currency, low_minor=band[0], high_minor=band[1]) if band else None
        interests.append(
            InterestOut(
                category_id=category,
                affinity=round(affinities[category], 6),
                order_count=interest.order_count,
                last_order_at=interest.last_order_at,
                price_band=price_band,
            )
        )
    return ProfileOut(
        external_id=external_id,
        order_count=state.order_count,
        first_order_at=state.first_order_at,
        last_order_at=state.last_order_at,
        days_since_last_order=max(0, (now - state.last_order_at).days),
        preferred_format=state.preferred_format,
        currency=state.currency,
        total_spend=[
            SpendOut(currency=code, orders=spend.orders, amount_minor=spend.minor)
            for code, spend in sorted(state.spend.items())
        ],
        lifetime_value=LifetimeValueOut(
            currency=value.currency,
            historic_minor=value.historic_minor,
            expected_future_minor=value.expected_future_minor,
            total_minor=value.total_minor,
            horizon_days=value.horizon_days,
            orders_per_year=round(value.orders_per_year, 4),
            probability_active=round(value.probability_active, 4),
        ),
        interests=interests,
    )
