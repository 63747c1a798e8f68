"""Each shop's typical gap between orders, the fallback of the defection signals (refreshed daily)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger
from sqlmodel import Field, Session, SQLModel

from partners.churn_risk import DEFAULT_TYPICAL_DAYS
from partners.db import UTCDateTime, utcnow
from partners.retention_rules import LtvThresholds


class RetentionBaseline(SQLModel, table=True):
    __tablename__ = "retention_baselines"

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    typical_interval_days: float
    repeat_customers: int
    # Lifetime-value bands (partners.retention_rules): None until the shop has enough customers.
    ltv_currency: str | None = Field(default=None, max_length=3)
    ltv_median_minor: int | None = Field(default=None, sa_type=BigInteger)
    ltv_top_minor: int | None = Field(default=None, sa_type=BigInteger)
    computed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def typical_days(session: Session, tenant_id: str) -> float:
    """The shop's typical gap in days as last computed; the default before the first daily run."""
    row = session.get(RetentionBaseline, tenant_id)
    return row.typical_interval_days if row is not None else DEFAULT_TYPICAL_DAYS


def save(
    session: Session,
    tenant_id: str,
    typical_interval_days: float,
    repeat_customers: int,
    bands: LtvThresholds | None,
    now: datetime,
) -> None:
    """Store the shop's newly computed typical gap and lifetime-value bands."""
    row = session.get(RetentionBaseline, tenant_id) or RetentionBaseline(
        tenant_id=tenant_id, typical_interval_days=typical_interval_days, repeat_customers=repeat_customers
    )
    row.typical_interval_days, row.repeat_customers, row.computed_at = typical_interval_days, repeat_customers, now
    row.ltv_currency = bands.currency if bands else None
    row.ltv_median_minor = bands.median_minor if bands else None
    row.ltv_top_minor = bands.top_minor if bands else None
    session.add(row)
    session.flush()
