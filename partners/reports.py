"""Reports over a date range [start, end): what offers reached, and what they earned.

A partnership has two directions: the partner's offers shown to my customers (I am the host) and
my offers shown to the partner's customers (I offer). Each direction counts impressions, unique
customers reached, redemptions, the conversion rate, revenue and commission, in total and per
offer. Unique customers are counted from the host's impressions: the offering side gets the
number, never any customer id. Revenue and commission are net of reversals, per currency.

New customers won: redeemed orders (not reversed, in the range) that the offering shop also sent
as purchases (`POST /v1/customers/{id}/purchases`, same order id) and that were the customer's
first order there; their spend since is everything those customers have bought there since.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Table, and_, distinct, exists, func, select
from sqlmodel import Session

from partners import offers, partnerships, placements
from partners.errors import Invalid
from partners.impressions import Impression
from partners.purchases import Purchase
from partners.redemptions import Redemption

MAX_RANGE_DAYS = 400


@dataclass
class Stats:
    impressions: int = 0
    unique_customers: int = 0
    redemptions: int = 0  # not reversed
    reversed: int = 0
    revenue: dict[str, int] = field(default_factory=dict)
    commission: dict[str, int] = field(default_factory=dict)
    new_customers: int = 0
    new_customer_spend: dict[str, int] = field(default_factory=dict)

    @property
    def conversion_rate(self) -> float | None:
        """Redemptions per impression; None without impressions."""
        return round(self.redemptions / self.impressions, 6) if self.impressions else None


@dataclass(frozen=True)
class Direction:
    """One way of a partnership: the offering tenant's offers shown at the host."""

    host_tenant_id: str
    offering_tenant_id: str
    total: Stats
    by_offer: dict[str, Stats]


@dataclass(frozen=True)
class PartnershipReport:
    partnership_id: str
    start: datetime
    end: datetime
    as_host: Direction  # the partner's offers shown to my customers
    as_offering: Direction  # my offers shown to the partner's customers


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
    if (end - start).days > MAX_RANGE_DAYS:
        raise Invalid(f"Ask for at most {MAX_RANGE_DAYS} days at a time.", param="from")


@dataclass(frozen=True)
class _Scope:
    """Whose rows a report reads: the host's impressions and the offering side's redemptions."""

    host: str
    offering: str
    partnership_id: str
    start: datetime
    end: datetime
    offer_id: str | None = None


def _impressions(session: Session, scope: _Scope, by_offer: bool) -> dict[str | None, tuple[int, int]]:
    """(impressions, unique customers), per offer or in total (key None)."""
    shown: Table = Impression.__table__  # type: ignore[attr-defined]
    where = [
        shown.c.tenant_id == scope.host,
        shown.c.partnership_id == scope.partnership_id,
        shown.c.created_at >= scope.start,
        shown.c.created_at < scope.end,
    ]
    if scope.offer_id is not None:
        where.append(shown.c.offer_id == scope.offer_id)
    counts = (func.count(), func.count(distinct(shown.c.customer_id)))
    if not by_offer:
        impressions, customers = session.execute(select(*counts).where(*where)).one()
        return {None: (int(impressions), int(customers))}
    rows = session.execute(select(shown.c.offer_id, *counts).where(*where).group_by(shown.c.offer_id)).all()
    return {str(offer_id): (int(n), int(c)) for offer_id, n, c in rows}


def _redeemed(scope: _Scope) -> list[ColumnElement[bool]]:
    red: Table = Redemption.__table__  # type: ignore[attr-defined]
    where = [
        red.c.tenant_id == scope.offering,
        red.c.partnership_id == scope.partnership_id,
        red.c.redeemed_at >= scope.start,
        red.c.redeemed_at < scope.end,
    ]
    if scope.offer_id is not None:
        where.append(red.c.offer_id == scope.offer_id)
    return where


def _money(session: Session, scope: _Scope, stats: dict[str | None, Stats], by_offer: bool) -> None:
    red: Table = Redemption.__table__  # type: ignore[attr-defined]
    kept = red.c.reversed_at.is_(None)
    keys = [red.c.offer_id] if by_offer else []
    rows = session.execute(
        select(*keys, red.c.currency, kept, func.count(), func.sum(red.c.order_value), func.sum(red.c.commission))
        .where(*_redeemed(scope))
        .group_by(*keys, red.c.currency, kept)
    ).all()
    for row in rows:
        offer_id = str(row[0]) if by_offer else None
        currency, is_kept, count, value, commission = row[-5:]
        target = stats.setdefault(offer_id, Stats())
        if not is_kept:
            target.reversed += int(count)
            continue
        target.redemptions += int(count)
        target.revenue[str(currency)] = target.revenue.get(str(currency), 0) + int(value)
        target.commission[str(currency)] = target.commission.get(str(currency), 0) + int(commission)


def _new_customers(session: Session, scope: _Scope, stats: dict[str | None, Stats], by_offer: bool) -> None:
    """Customers whose first order at the offering shop was a redeemed one, and what they spent since."""
    red: Table = Redemption.__table__  # type: ignore[attr-defined]
    purchase: Table = Purchase.__table__  # type: ignore[attr-defined]
    first, earlier, since = purchase.alias("first"), purchase.alias("earlier"), purchase.alias("since")
    acquired = (
        select(red.c.offer_id, first.c.customer_id)
        .join(first, and_(first.c.tenant_id == red.c.tenant_id, first.c.order_id == red.c.order_id))
        .where(
            *_redeemed(scope),
            red.c.reversed_at.is_(None),
            ~exists().where(
                earlier.c.tenant_id == first.c.tenant_id,
                earlier.c.customer_id == first.c.customer_id,
                earlier.c.ordered_at < first.c.ordered_at,
            ),
        )
        .subquery()
    )
    key = [acquired.c.offer_id] if by_offer else []
    for row in session.execute(select(*key, func.count(distinct(acquired.c.customer_id))).group_by(*key)).all():
        stats.setdefault(str(row[0]) if by_offer else None, Stats()).new_customers = int(row[-1])
    # One row per (offer, customer) before summing, so a customer won twice is not counted twice.
    won = select(*key, acquired.c.customer_id).distinct().subquery()
    won_key = [won.c.offer_id] if by_offer else []
    spend = session.execute(
        select(*won_key, since.c.currency, func.sum(since.c.total_minor))
        .select_from(won)
        .join(since, and_(since.c.tenant_id == scope.offering, since.c.customer_id == won.c.customer_id))
        .group_by(*won_key, since.c.currency)
    ).all()
    for row in spend:
        target = stats.setdefault(str(row[0]) if by_offer else None, Stats())
        target.new_customer_spend[str(row[-2])] = int(row[-1])


def _collect(session: Session, scope: _Scope, by_offer: bool) -> dict[str | None, Stats]:
    stats: dict[str | None, Stats] = {}
    for key, (impressions, customers) in _impressions(session, scope, by_offer).items():
        stats[key] = Stats(impressions=impressions, unique_customers=customers)
    _money(session, scope, stats, by_offer)
    _new_customers(session, scope, stats, by_offer)
    return stats


def _direction(session: Session, scope: _Scope) -> Direction:
    total = _collect(session, scope, by_offer=False).get(None, Stats())
    by_offer = {str(k): v for k, v in sorted(_collect(session, scope, by_offer=True).items(), key=str)}
    return Direction(scope.host, scope.offering, total, by_offer)


def for_partnership(
    session: Session, tenant_id: str, partnership_id: str, start: datetime, end: datetime
) -> PartnershipReport:
    """Both directions of one of the tenant's partnerships (NotFound for anyone else's)."""
    _check_range(start, end)
    partner = partnerships.get(session, tenant_id, partnership_id).partner_tenant_id
    return PartnershipReport(
        partnership_id,
        start,
        end,
        as_host=_direction(session, _Scope(tenant_id, partner, partnership_id, start, end)),
        as_offering=_direction(session, _Scope(partner, tenant_id, partnership_id, start, end)),
    )


def _sum(parts: Iterable[Stats]) -> Stats:
    total = Stats()
    for part in parts:
        total.impressions += part.impressions
        # A host's customers are its own: unique counts of different hosts add up.
        total.unique_customers += part.unique_customers
        total.redemptions += part.redemptions
        total.reversed += part.reversed
        total.new_customers += part.new_customers
        for mine, theirs in (
            (total.revenue, part.revenue),
            (total.commission, part.commission),
            (total.new_customer_spend, part.new_customer_spend),
        ):
            for currency, amount in theirs.items():
                mine[currency] = mine.get(currency, 0) + amount
    return total


def for_offer(session: Session, tenant_id: str, offer_id: str, start: datetime, end: datetime) -> OfferReport:
    """One of the tenant's own offers, across every partnership it was published to."""
    _check_range(start, end)
    offers.get(session, tenant_id, offer_id)
    parts = [
        _collect(
            session,
            _Scope(placement.partner_tenant_id, tenant_id, placement.partnership_id, start, end, offer_id),
            by_offer=False,
        ).get(None, Stats())
        for placement in placements.for_offer(session, tenant_id, offer_id)
        if not placement.hosting
    ]
    return OfferReport(offer_id, start, end, _sum(parts))
