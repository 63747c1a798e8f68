"""Redemptions reported by the offering shop, the partnership ledger, and reports."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth.principal import RedemptionsWrite, ReportsRead
from api.deps import SessionDep
from api.etags import ConditionalRoute
from partners import ledger, partnerships, redemptions, reports
from partners.db import utcnow

router = APIRouter(prefix="/v1", tags=["redemptions"], route_class=ConditionalRoute)

DEFAULT_RANGE = timedelta(days=30)


class RedemptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(min_length=1, max_length=128, description="Your order id; reporting it again is a no-op")
    order_value: int = Field(gt=0, le=redemptions.MAX_ORDER_VALUE, description="Order value in minor units")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    code: str | None = Field(default=None, min_length=1, max_length=64, description="The code the customer used")
    impression_id: str | None = Field(default=None, max_length=40, description="Or the impression the order came from")
    redeemed_at: datetime | None = Field(default=None, description="When the order was placed (default: now)")


class ReverseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=500, description="Why (a refund, a cancellation)")


class RedemptionOut(BaseModel):
    id: str
    order_id: str
    impression_id: str
    partnership_id: str
    host_tenant_id: str
    offer_id: str
    code: str | None
    order_value: int
    currency: str
    commission_bps: int
    commission: int
    redeemed_at: datetime
    reversed_at: datetime | None
    reversal_reason: str | None


def _out(r: redemptions.Redemption) -> RedemptionOut:
    return RedemptionOut.model_validate(r, from_attributes=True)


@router.post(
    "/redemptions",
    status_code=201,
    summary="Report an order that used a partner offer's code (or came from an impression)",
    description="201 when recorded; 200 when the same order was already reported with the same details.",
)
def report_redemption(
    body: RedemptionIn, caller: RedemptionsWrite, session: SessionDep, response: Response
) -> RedemptionOut:
    data = redemptions.RedemptionInput(**body.model_dump())
    recorded = redemptions.record(session, caller.tenant_id, data, now=utcnow())
    if not recorded.created:
        response.status_code = 200
    return _out(recorded.redemption)


@router.get("/redemptions/{redemption_id}", summary="One of your redemptions")
def get_redemption(redemption_id: str, caller: RedemptionsWrite, session: SessionDep) -> RedemptionOut:
    return _out(redemptions.get(session, caller.tenant_id, redemption_id))


@router.post("/redemptions/{redemption_id}/reverse", summary="Record a refund: the commission is netted")
def reverse_redemption(
    redemption_id: str, body: ReverseIn, caller: RedemptionsWrite, session: SessionDep
) -> RedemptionOut:
    return _out(redemptions.reverse(session, caller.tenant_id, redemption_id, body.reason, now=utcnow()))


class MoneyOut(BaseModel):
    currency: str
    commissions: int
    reversals: int
    net: int


class EntryOut(BaseModel):
    id: str
    redemption_id: str
    kind: str
    amount: int
    currency: str
    direction: str
    created_at: datetime


class MonthOut(BaseModel):
    month: str
    owed_to_me: list[MoneyOut]
    owed_by_me: list[MoneyOut]
    impressions_given: int
    impressions_received: int
    reciprocity_balance: int = Field(description="Impressions given minus received")


class LedgerOut(BaseModel):
    partnership_id: str
    months: list[MonthOut]
    entries: list[EntryOut] = Field(description="Every entry, oldest first, each naming its redemption")


def _money(side: dict[str, ledger.Money]) -> list[MoneyOut]:
    return [
        MoneyOut(currency=m.currency, commissions=m.commissions, reversals=m.reversals, net=m.net)
        for m in side.values()
    ]


@router.get("/partnerships/{partnership_id}/ledger", summary="Commissions and impressions per month, both ways")
def get_ledger(partnership_id: str, caller: ReportsRead, session: SessionDep) -> LedgerOut:
    partnerships.get(session, caller.tenant_id, partnership_id)
    months = [
        MonthOut(
            month=m.month,
            owed_to_me=_money(m.owed_to_me),
            owed_by_me=_money(m.owed_by_me),
            impressions_given=m.impressions_given,
            impressions_received=m.impressions_received,
            reciprocity_balance=m.reciprocity_balance,
        )
        for m in ledger.monthly(session, caller.tenant_id, partnership_id)
    ]
    entries = [
        EntryOut.model_validate(e, from_attributes=True)
        for e in ledger.entries(session, caller.tenant_id, partnership_id)
    ]
    return LedgerOut(partnership_id=partnership_id, months=months, entries=entries)


class StatsOut(BaseModel):
    impressions: int
    unique_customers: int = Field(description="Customers reached (a count only; never ids)")
    redemptions: int = Field(description="Not reversed")
    reversed: int
    conversion_rate: float | None = Field(description="Redemptions per impression; null without impressions")
    revenue: dict[str, int] = Field(description="Order value per currency, minor units, net of reversals")
    commission: dict[str, int]


class PartnershipReportOut(BaseModel):
    partnership_id: str
    start: datetime
    end: datetime
    as_host: StatsOut = Field(description="The partner's offers shown to your customers")
    as_offering: StatsOut = Field(description="Your offers shown to the partner's customers")


class OfferReportOut(BaseModel):
    offer_id: str
    start: datetime
    end: datetime
    stats: StatsOut


def _stats(s: reports.Stats) -> StatsOut:
    return StatsOut(
        impressions=s.impressions,
        unique_customers=s.unique_customers,
        redemptions=s.redemptions,
        reversed=s.reversed,
        conversion_rate=s.conversion_rate,
        revenue=s.revenue,
        commission=s.commission,
    )


From = Annotated[datetime | None, Query(alias="from", description="Start (inclusive); default 30 days before to")]
To = Annotated[datetime | None, Query(alias="to", description="End (exclusive); default now")]


def _range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = end or utcnow()
    return start or end - DEFAULT_RANGE, end


@router.get("/reports/partnerships/{partnership_id}", summary="Impressions, redemptions and revenue, both ways")
def partnership_report(
    partnership_id: str, caller: ReportsRead, session: SessionDep, start: From = None, end: To = None
) -> PartnershipReportOut:
    start, end = _range(start, end)
    r = reports.for_partnership(session, caller.tenant_id, partnership_id, start, end)
    return PartnershipReportOut(
        partnership_id=r.partnership_id,
        start=r.start,
        end=r.end,
        as_host=_stats(r.as_host),
        as_offering=_stats(r.as_offering),
    )


@router.get("/reports/offers/{offer_id}", summary="One of your offers, across every host")
def offer_report(
    offer_id: str, caller: ReportsRead, session: SessionDep, start: From = None, end: To = None
) -> OfferReportOut:
    start, end = _range(start, end)
    r = reports.for_offer(session, caller.tenant_id, offer_id, start, end)
    return OfferReportOut(offer_id=r.offer_id, start=r.start, end=r.end, stats=_stats(r.stats))
