"""The partnership ledger and reports (scope `reports:read`), as JSON or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from api.auth.principal import ReportsRead
from api.deps import SessionDep
from api.pagination import Page, Paging
from partners import ledger, partnerships, redemptions, reports
from partners.db import utcnow

router = APIRouter(prefix="/v1", tags=["reports"])

DEFAULT_RANGE = timedelta(days=30)
CSV = "text/csv"
_CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {CSV: {"schema": {"type": "string"}}}, "description": "JSON, or CSV when asked for"}
}


class MoneyOut(BaseModel):
    currency: str
    commissions: int
    reversals: int
    net: int


class MonthOut(BaseModel):
    month: str
    owed_to_me: list[MoneyOut] = Field(description="Commissions your partner owes you (you host), per currency")
    owed_by_me: list[MoneyOut] = Field(description="Commissions you owe your partner (you offer), per currency")
    impressions_given: int = Field(description="Your partner's offers you showed your customers")
    impressions_received: int = Field(description="Your offers your partner showed its customers")
    reciprocity_balance: int = Field(description="Impressions given minus received")


class LedgerOut(BaseModel):
    partnership_id: str
    months: list[MonthOut] = Field(description="Newest first; entries under /ledger/entries")


class EntryOut(BaseModel):
    id: str
    month: str
    redemption_id: str
    kind: str = Field(description="`commission`, or `reversal` (negative)")
    amount: int
    currency: str
    direction: str = Field(description="`owed_to_me` or `owed_by_me`")
    created_at: datetime
    offer_id: str | None = Field(description="The redeemed offer")
    impression_id: str | None = Field(description="The impression the order is attributed to")
    order_value: int | None
    commission_bps: int | None


def _money(side: dict[str, ledger.Money]) -> list[MoneyOut]:
    return [
        MoneyOut(currency=m.currency, commissions=m.commissions, reversals=m.reversals, net=m.net)
        for m in sorted(side.values(), key=lambda m: m.currency)
    ]


@router.get("/partnerships/{partnership_id}/ledger", summary="Commissions and impressions per month, both ways")
def get_ledger(partnership_id: str, caller: ReportsRead, session: SessionDep) -> LedgerOut:
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
    return LedgerOut(partnership_id=partnership_id, months=months)


@router.get(
    "/partnerships/{partnership_id}/ledger/entries",
    summary="Every ledger entry, oldest first, each with the redemption it comes from",
)
def ledger_entries(
    partnership_id: str,
    caller: ReportsRead,
    session: SessionDep,
    paging: Paging,
    month: Annotated[str | None, Query(description="Only this month, 'YYYY-MM'", max_length=7)] = None,
) -> Page[EntryOut]:
    rows, more = ledger.entries(
        session, caller.tenant_id, partnership_id, month=month, after=paging.after, limit=paging.limit
    )
    partner = partnerships.get(session, caller.tenant_id, partnership_id).partner_tenant_id
    traced = redemptions.for_ledger(session, caller.tenant_id, partner, rows)
    items = []
    for entry in rows:
        red = traced.get(entry.redemption_id)
        items.append(
            EntryOut(
                id=entry.id,
                month=entry.month,
                redemption_id=entry.redemption_id,
                kind=entry.kind,
                amount=entry.amount,
                currency=entry.currency,
                direction=entry.direction,
                created_at=entry.created_at,
                offer_id=red.offer_id if red else None,
                impression_id=red.impression_id if red else None,
                order_value=red.order_value if red else None,
                commission_bps=red.commission_bps if red else None,
            )
        )
    return paging.page(items, more, rows[-1].id if rows else None)


class StatsOut(BaseModel):
    impressions: int
    unique_customers: int = Field(description="Customers reached (a count only; never ids)")
    redemptions: int = Field(description="Not reversed")
    reversed: int
    conversion_rate: float | None = Field(description="Redemptions per impression; null without impressions")
    revenue: dict[str, int] = Field(description="Order value per currency, minor units, net of reversals")
    commission: dict[str, int]
    new_customers: int = Field(description="Customers whose first order at the offering shop was a redemption")
    new_customer_spend: dict[str, int] = Field(description="What those customers have spent there since")


class OfferStatsOut(StatsOut):
    offer_id: str


class DirectionOut(BaseModel):
    host_tenant_id: str
    offering_tenant_id: str
    total: StatsOut
    offers: list[OfferStatsOut]


class PartnershipReportOut(BaseModel):
    partnership_id: str
    start: datetime
    end: datetime
    as_host: DirectionOut = Field(description="The partner's offers shown to your customers")
    as_offering: DirectionOut = Field(description="Your offers shown to the partner's customers")


class OfferReportOut(BaseModel):
    offer_id: str
    start: datetime
    end: datetime
    stats: StatsOut


def _values(s: reports.Stats) -> dict[str, Any]:
    return {
        "impressions": s.impressions,
        "unique_customers": s.unique_customers,
        "redemptions": s.redemptions,
        "reversed": s.reversed,
        "conversion_rate": s.conversion_rate,
        "revenue": s.revenue,
        "commission": s.commission,
        "new_customers": s.new_customers,
        "new_customer_spend": s.new_customer_spend,
    }


def _direction(d: reports.Direction) -> DirectionOut:
    return DirectionOut(
        host_tenant_id=d.host_tenant_id,
        offering_tenant_id=d.offering_tenant_id,
        total=StatsOut(**_values(d.total)),
        offers=[OfferStatsOut(offer_id=offer_id, **_values(s)) for offer_id, s in d.by_offer.items()],
    )


From = Annotated[datetime | None, Query(alias="from", description="Start (inclusive); default 30 days before to")]
To = Annotated[datetime | None, Query(alias="to", description="End (exclusive); default now")]
Format = Annotated[
    Literal["json", "csv"] | None, Query(alias="format", description="`csv` for a download (or Accept: text/csv)")
]


def _range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = end or utcnow()
    return start or end - DEFAULT_RANGE, end


def _wants_csv(request: Request, format_: str | None) -> bool:
    if format_ is not None:
        return format_ == "csv"
    accept = request.headers.get("accept", "")
    return CSV in accept and "application/json" not in accept


CSV_COLUMNS = (
    "direction",
    "offer_id",
    "from",
    "to",
    "impressions",
    "unique_customers",
    "redemptions",
    "reversed",
    "conversion_rate",
    "currency",
    "revenue",
    "commission",
    "new_customers",
    "new_customer_spend",
)


def _csv_rows(direction: str, offer_id: str, start: datetime, end: datetime, s: reports.Stats) -> Iterator[list[Any]]:
    """One row per currency (counts repeat on each); one row with no currency when nothing was earned."""
    currencies = sorted(set(s.revenue) | set(s.commission) | set(s.new_customer_spend)) or [""]
    for currency in currencies:
        yield [
            direction,
            offer_id,
            start.isoformat(),
            end.isoformat(),
            s.impressions,
            s.unique_customers,
            s.redemptions,
            s.reversed,
            "" if s.conversion_rate is None else s.conversion_rate,
            currency,
            s.revenue.get(currency, 0) if currency else 0,
            s.commission.get(currency, 0) if currency else 0,
            s.new_customers,
            s.new_customer_spend.get(currency, 0) if currency else 0,
        ]


def _csv(filename: str, rows: Iterator[list[Any]]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    return Response(
        out.getvalue(),
        media_type=f"{CSV}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _partnership_csv(r: reports.PartnershipReport) -> Iterator[list[Any]]:
    for name, d in (("as_host", r.as_host), ("as_offering", r.as_offering)):
        yield from _csv_rows(name, "", r.start, r.end, d.total)
        for offer_id, s in d.by_offer.items():
            yield from _csv_rows(name, offer_id, r.start, r.end, s)


@router.get(
    "/reports/partnerships/{partnership_id}",
    summary="Impressions, redemptions, revenue and new customers, both ways, in total and per offer",
    response_model=PartnershipReportOut,
    responses=_CSV_RESPONSE,
)
def partnership_report(
    partnership_id: str,
    caller: ReportsRead,
    session: SessionDep,
    request: Request,
    start: From = None,
    end: To = None,
    format_: Format = None,
) -> PartnershipReportOut | Response:
    start, end = _range(start, end)
    r = reports.for_partnership(session, caller.tenant_id, partnership_id, start, end)
    if _wants_csv(request, format_):
        return _csv(f"partnership-{partnership_id}.csv", _partnership_csv(r))
    return PartnershipReportOut(
        partnership_id=r.partnership_id,
        start=r.start,
        end=r.end,
        as_host=_direction(r.as_host),
        as_offering=_direction(r.as_offering),
    )


@router.get(
    "/reports/offers/{offer_id}",
    summary="One of your offers, across every partnership it is published to",
    response_model=OfferReportOut,
    responses=_CSV_RESPONSE,
)
def offer_report(
    offer_id: str,
    caller: ReportsRead,
    session: SessionDep,
    request: Request,
    start: From = None,
    end: To = None,
    format_: Format = None,
) -> OfferReportOut | Response:
    start, end = _range(start, end)
    r = reports.for_offer(session, caller.tenant_id, offer_id, start, end)
    if _wants_csv(request, format_):
        return _csv(f"offer-{offer_id}.csv", _csv_rows("as_offering", offer_id, r.start, r.end, r.stats))
    return OfferReportOut(offer_id=r.offer_id, start=r.start, end=r.end, stats=StatsOut(**_values(r.stats)))
