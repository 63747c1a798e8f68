"""Each shop's typical gap between orders, the fallback of the defection signals (refreshed daily)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, Session, SQLModel

from partners.churn_risk import DEFAULT_TYPICAL_DAYS
from partners.db import UTCDateTime, utcnow


class RetentionBaseline(SQLModel, table=True):
    __tablename__ = "retention_baselines"

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    typical_interval_days: float
    repeat_customers: int
    computed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def typical_days(session: Session, tenant_id: str) -> float:
    """The shop's typical gap in days as last computed; the default before the first daily run."""
    row = session.get(RetentionBaseline, tenant_id)
    return row.typical_interval_days if row is not None else DEFAULT_TYPICAL_DAYS


def save(session: Session, tenant_id: str, typical_interval_days: float, repeat_customers: int, now: datetime) -> None:
    """Store the shop's newly computed typical gap."""
    row = session.get(RetentionBaseline, tenant_id) or RetentionBaseline(
        tenant_id=tenant_id, typical_interval_days=typical_interval_days, repeat_customers=repeat_customers
    )
    row.typical_interval_days, row.repeat_customers, row.computed_at = typical_interval_days, repeat_customers, now
    session.add(row)
    session.flush()
