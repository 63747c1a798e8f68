"""Reports over a date range [start, end): what offers reached, and what they earned.

A partnership has two directions: the partner's offers shown to my customers (I am the host) and
my offers shown to the partner's customers (I offer). Each direction counts impressions, unique
customers reached, redemptions, the conversion rate, revenue and commission. Unique customers are
counted from the host's impressions: the offering side gets the number, never any customer id.
Revenue and commission are net of reversals, per currency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import distinct, func, select
from sqlmodel import Session

from partners import offers, partnerships
from partners.errors import Invalid
from partners.impressions import Impression
from partners.redemptions import Redemption


@dataclass
class Stats:
    impressions: int = 0
    unique_customers: int = 0
    redemptions: int = 0
    reversed: int = 0
    revenue: dict[str, int] = field(default_factory=dict)
    commission: dict[str, int] = field(default_factory=dict)

    @property
    def conversion_rate(self) -> float | None:
        return round(self.redemptions / self.impressions, 6) if self.impressions else None


@dataclass(frozen=True)
class PartnershipReport:
    partnership_id: str
    start: datetime
    end: datetime
    as_host: Stats
    as_offering: Stats


@dataclass(frozen=True)
class OfferReport:
    offer_id: str
    start: datetime
    end: datetime
    stats: Stats


def _check_range(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise Invalid("from and to need a timezone.", param="from")
    if start >= end:
        raise Invalid("from must be before to.", param="from")


def _stats(
    session: Session,
    *,
    host: str | None,
    offering: str,
    start: datetime,
    end: datetime,
    partnership_id: str | None = None,
    offer_id: str | None = None,
) -> Stats:
    shown = Impression.__table__  # type: ignore[attr-defined]
    where = [shown.c.offering_tenant_id == offering, shown.c.created_at >= start, shown.c.created_at < end]
    if host is not None:
        where.append(shown.c.tenant_id == host)
    if partnership_id is not None:
        where.append(shown.c.partnership_id == partnership_id)
    if offer_id is not None:
        where.append(shown.c.offer_id == offer_id)
    impressions, customers = session.execute(
        select(func.count(), func.count(distinct(shown.c.tenant_id.concat("|").concat(shown.c.customer_id)))).where(
            *where
        )
    ).one()
    stats = Stats(impressions=int(impressions), unique_customers=int(customers))
    red = Redemption.__table__  # type: ignore[attr-defined]
    where = [red.c.tenant_id == offering, red.c.redeemed_at >= start, red.c.redeemed_at < end]
    if host is not None:
        where.append(red.c.host_tenant_id == host)
    if partnership_id is not None:
        where.append(red.c.partnership_id == partnership_id)
    if offer_id is not None:
        where.append(red.c.offer_id == offer_id)
    rows = session.execute(
        select(
            red.c.currency,
            red.c.reversed_at.is_(None),
            func.count(),
            func.sum(red.c.order_value),
            func.sum(red.c.commission),
        )
        .where(*where)
        .group_by(red.c.currency, red.c.reversed_at.is_(None))
    ).all()
    for currency, kept, count, value, commission in rows:
        if not kept:
            stats.reversed += int(count)
            continue
        stats.redemptions += int(count)
        stats.revenue[str(currency)] = stats.revenue.get(str(currency), 0) + int(value)
        stats.commission[str(currency)] = stats.commission.get(str(currency), 0) + int(commission)
    return stats


def for_partnership(
    session: Session, tenant_id: str, partnership_id: str, start: datetime, end: datetime
) -> PartnershipReport:
    """Both directions of one of the tenant's partnerships (NotFound for anyone else's)."""
    _check_range(start, end)
    mine = partnerships.get(session, tenant_id, partnership_id)
    partner = mine.partner_tenant_id
    return PartnershipReport(
        partnership_id,
        start,
        end,
        as_host=_stats(session, host=tenant_id, offering=partner, start=start, end=end, partnership_id=partnership_id),
        as_offering=_stats(
            session, host=partner, offering=tenant_id, start=start, end=end, partnership_id=partnership_id
        ),
    )


def for_offer(session: Session, tenant_id: str, offer_id: str, start: datetime, end: datetime) -> OfferReport:
    """One of the tenant's own offers, across every host it was shown at."""
    _check_range(start, end)
    offers.get(session, tenant_id, offer_id)
    return OfferReport(
        offer_id, start, end, _stats(session, host=None, offering=tenant_id, start=start, end=end, offer_id=offer_id)
    )
