"""Defection signals per customer: who is cooling off, at risk or lapsed, with counts per level."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field

from api.auth.principal import CustomersWrite
from api.deps import SessionDep
from api.pagination import Paging, encode_cursor
from partners import churn_signals
from partners.churn_risk import RiskLevel
from partners.db import utcnow

router = APIRouter(prefix="/v1", tags=["retention"])


class LifetimeValueOut(BaseModel):
    currency: str
    total_minor: int
    historic_minor: int
    expected_future_minor: int


class AtRiskOut(BaseModel):
    customer_id: str
    external_id: str
    risk_level: RiskLevel
    order_count: int
    last_order_at: datetime
    expected_interval_days: float = Field(description="The expected gap between this customer's orders")
    next_order_due_at: datetime
    days_overdue: float = Field(description="Days of silence beyond the expected gap (0 when not yet due)")
    lifetime_value: LifetimeValueOut
    assessed_at: datetime = Field(description="When the stored level last changed")
    defection_reasons: list[str] | None = Field(
        description="What the customer answered to your defection survey (choice ids), if they did"
    )
    defection_answered_at: datetime | None


class RiskPage(BaseModel):
    data: list[AtRiskOut]
    next_cursor: str | None
    counts: dict[str, int] = Field(description="Customers with orders at each level, all filters aside")


def _out(row: churn_signals.AtRisk) -> AtRiskOut:
    value = row.lifetime_value
    return AtRiskOut(
        customer_id=row.customer_id,
        external_id=row.external_id,
        risk_level=row.level,
        order_count=row.order_count,
        last_order_at=row.last_order_at,
        expected_interval_days=round(row.expected_interval_days, 1),
        next_order_due_at=row.next_order_due_at,
        days_overdue=round(row.days_overdue, 1),
        lifetime_value=LifetimeValueOut(
            currency=value.currency,
            total_minor=value.total_minor,
            historic_minor=value.historic_minor,
            expected_future_minor=value.expected_future_minor,
        ),
        assessed_at=row.assessed_at,
        defection_reasons=row.defection_reasons,
        defection_answered_at=row.defection_answered_at,
    )


@router.get("/churn-risk/customers", summary="Customers by churn risk level, with counts per level")
def list_by_risk(
    caller: CustomersWrite,
    session: SessionDep,
    paging: Paging,
    level: Annotated[list[RiskLevel] | None, Query(description="Only these levels (repeat the parameter)")] = None,
    min_orders: Annotated[int | None, Query(ge=1, le=1_000_000, description="At least this many orders")] = None,
    last_order_before: Annotated[AwareDatetime | None, Query(description="Last order before this time")] = None,
) -> RiskPage:
    wanted = churn_signals.check_filter(churn_signals.RiskFilter(tuple(level or ()), min_orders, last_order_before))
    rows, more = churn_signals.list_customers(session, caller.tenant_id, wanted, paging.after, paging.limit, utcnow())
    cursor = encode_cursor(paging.secret, rows[-1].customer_id) if more and rows else None
    return RiskPage(
        data=[_out(r) for r in rows],
        next_cursor=cursor,
        counts=churn_signals.counts_by_level(session, caller.tenant_id),
    )
