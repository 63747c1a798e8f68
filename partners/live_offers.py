"""Live offers by host: what each partnership may serve, worked out when data changes, read in one query.

One row per (host, partnership, offer) with an approved version, owned by the host, holding a
copy of that version and of the budget left. `refresh` rewrites it whenever something it depends
on changes (approval, edit, pause, resume, archive, budget use, codes); `status` is `live` or the
reason it is not. The clock is applied when reading: `live_for_host` keeps rows whose window
holds `now`, and joins the host's partnership row so a paused or ended partnership stops at once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKeyConstraint,
    Index,
    Select,
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
    text,
)
from sqlmodel import Field, Session, SQLModel

from partners import changes, codes, counters, offers, partnerships, placements
from partners import offer_rules as rules
from partners.db import UTCDateTime, utcnow
from partners.offer_rules import CodeMode, OfferState, ServingFacts
from partners.partnership_rules import State

_LIVE = "status = 'live'"


class LiveOffer(SQLModel, table=True):
    __tablename__ = "live_offers"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "partnership_id"], ["partnerships.tenant_id", "partnerships.id"], ondelete="CASCADE"
        ),
        Index("ix_live_offers_serving", "tenant_id", "ends_at", sqlite_where=text(_LIVE), postgresql_where=text(_LIVE)),
    )

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")  # the host
    partnership_id: str = Field(primary_key=True, max_length=40)
    offer_id: str = Field(primary_key=True, max_length=40)
    offering_tenant_id: str = Field(max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    status: str = Field(max_length=30)
    serving_version: int
    version_id: str = Field(max_length=40)
    kind: str = Field(max_length=20)
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    landing_url: str = Field(max_length=2000)
    currency: str = Field(max_length=3)
    percent_off_bps: int | None = None
    amount_off: int | None = Field(default=None, sa_type=BigInteger)
    friend_amount_off: int | None = Field(default=None, sa_type=BigInteger)
    minimum_order: int | None = Field(default=None, sa_type=BigInteger)
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    public_sale_starts_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    categories: list[str] = Field(default_factory=list, sa_type=JSON)
    price_min: int | None = Field(default=None, sa_type=BigInteger)
    price_max: int | None = Field(default=None, sa_type=BigInteger)
    customer_type: str = Field(max_length=10)
    min_lifetime_value: int | None = Field(default=None, sa_type=BigInteger)
    regions: list[str] = Field(default_factory=list, sa_type=JSON)
    risk_levels: list[str] = Field(default_factory=list, sa_type=JSON)
    lifetime_value_bands: list[str] = Field(default_factory=list, sa_type=JSON)
    budget_redemptions_left: int | None = Field(default=None, sa_type=BigInteger)
    budget_value_left: int | None = Field(default=None, sa_type=BigInteger)
    code_mode: str = Field(max_length=10)
    shared_code: str | None = Field(default=None, max_length=40)
    refreshed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


@dataclass(frozen=True, slots=True)
class LiveOfferRow:
    """One offer the host may show now, as the exchange reads it (no ORM object)."""

    partnership_id: str
    offer_id: str
    offering_tenant_id: str
    serving_version: int
    version_id: str
    kind: str
    title: str
    description: str
    landing_url: str
    currency: str
    percent_off_bps: int | None
    amount_off: int | None
    friend_amount_off: int | None
    minimum_order: int | None
    starts_at: datetime
    ends_at: datetime | None
    public_sale_starts_at: datetime | None
    categories: list[str]
    price_min: int | None
    price_max: int | None
    customer_type: str
    min_lifetime_value: int | None
    regions: list[str]
    budget_redemptions_left: int | None
    budget_value_left: int | None
    code_mode: str
    shared_code: str | None
    risk_levels: list[str]
    lifetime_value_bands: list[str]
    # Ranking inputs, from `partners.counters` (0 before anything was counted):
    offer_impressions: int = 0  # the offer's impressions at every host
    offer_redemptions: int = 0  # and its redemptions, net of reversals
    given: int = 0  # impressions the host gave of this partner's offers on the partnership
    received: int = 0  # impressions the partner gave of the host's offers on it


_COUNTED = ("offer_impressions", "offer_redemptions", "given", "received")
_ROW_FIELDS = [f.name for f in fields(LiveOfferRow) if f.name not in _COUNTED]


def _tables() -> tuple[Table, Table]:
    live: Table = LiveOffer.__table__  # type: ignore[attr-defined]
    partnership: Table = partnerships.Partnership.__table__  # type: ignore[attr-defined]
    return live, partnership


def _live_query() -> Select[tuple[object, ...]]:
    live, partnership = _tables()
    offer_count = counters.OfferCounter.__table__.alias("offer_count")  # type: ignore[attr-defined]
    mine = counters.PartnershipImpressions.__table__.alias("given_count")  # type: ignore[attr-defined]
    theirs = counters.PartnershipImpressions.__table__.alias("received_count")  # type: ignore[attr-defined]
    now = bindparam("now", type_=UTCDateTime())
    # Counters ride along as primary-key lookups on the same read: ranking never counts rows.
    return (
        select(
            *(live.c[name] for name in _ROW_FIELDS),
            func.coalesce(offer_count.c.impressions, 0),
            func.coalesce(offer_count.c.redemptions, 0),
            func.coalesce(mine.c.given, 0),
            func.coalesce(theirs.c.given, 0),
        )
        .join(
            partnership,
            and_(
                partnership.c.tenant_id == live.c.tenant_id,
                partnership.c.id == live.c.partnership_id,
                partnership.c.state == State.active,
            ),
        )
        .outerjoin(
            offer_count,
            and_(offer_count.c.tenant_id == live.c.offering_tenant_id, offer_count.c.offer_id == live.c.offer_id),
        )
        .outerjoin(
            mine,
            and_(
                mine.c.tenant_id == live.c.tenant_id,
                mine.c.partnership_id == live.c.partnership_id,
                mine.c.month == counters.ALL_TIME,
            ),
        )
        .outerjoin(
            theirs,
            and_(
                theirs.c.tenant_id == live.c.offering_tenant_id,
                theirs.c.partnership_id == live.c.partnership_id,
                theirs.c.month == counters.ALL_TIME,
            ),
        )
        .where(
            live.c.tenant_id == bindparam("host"),
            live.c.status == "live",
            live.c.starts_at <= now,
            or_(live.c.ends_at.is_(None), live.c.ends_at > now),
        )
        .order_by(live.c.offer_id, live.c.partnership_id)
    )


# Built once: SQLAlchemy caches its compiled form, and psycopg prepares it after a few runs.
LIVE_QUERY = _live_query()


def live_for_host(session: Session, host_tenant_id: str, now: datetime) -> list[LiveOfferRow]:
    """The partner offers `host_tenant_id` may show at `now`: one indexed read of the host's rows."""
    result = session.execute(LIVE_QUERY, {"host": host_tenant_id, "now": now})
    return [LiveOfferRow(*row) for row in result.all()]


def refresh(session: Session, host_tenant_id: str, offer_id: str) -> None:
    """Rewrite the host's live rows for a partner offer from the current data."""
    for placement in placements.for_offer(session, host_tenant_id, offer_id):
        if placement.hosting:
            _refresh_placement(session, placement)
    session.flush()


def refresh_offer(session: Session, offering_tenant_id: str, offer_id: str) -> None:
    """Rewrite the live rows of every host the offer is published to."""
    for placement in placements.for_offer(session, offering_tenant_id, offer_id):
        refresh(session, placement.partner_tenant_id, offer_id)


def refresh_partnership(session: Session, tenant_id: str, partnership_id: str) -> None:
    """Rewrite the live rows of every offer published either way on a partnership (after new terms)."""
    for placement in placements.on_partnership(session, tenant_id, partnership_id):
        refresh(session, placement.host_tenant_id, placement.offer_id)


def refresh_host(session: Session, host_tenant_id: str) -> None:
    """Rewrite all of a host's live rows (after it changed its brand-safety rules or currencies)."""
    for placement in placements.hosted(session, host_tenant_id):
        _refresh_placement(session, placement)
    session.flush()


def _refresh_placement(session: Session, placement: placements.OfferPlacement) -> None:
    key = (placement.tenant_id, placement.partnership_id, placement.offer_id)
    row = session.get(LiveOffer, key)
    offer = session.get(offers.Offer, (placement.offering_tenant_id, placement.offer_id))
    if offer is None or placement.serving_version is None:
        if row is not None:
            session.delete(row)
            _touch(session, placement)
        return
    version = offers.get_version(session, offer.tenant_id, offer.id, placement.serving_version)
    content = offers.content_of(version)
    partnership = partnerships.get(session, placement.tenant_id, placement.partnership_id)
    left = offers.budget_left(offer)
    pool = offer.code_mode == CodeMode.pool
    status = rules.serving_status(
        ServingFacts(
            offer_state=OfferState(offer.state),
            serving_version=placement.serving_version,
            partnership_active=partnership.state == State.active,
            budget_left=rules.has_budget(left),
            fits_partnership=placements.fits(session, partnership, offer.tenant_id, content),
            codes_ready=not pool or codes.has_available(session, offer.tenant_id, offer.id),
        )
    )
    values = {name: getattr(version, name) for name in _VERSION_FIELDS}
    values.update(
        offering_tenant_id=offer.tenant_id,
        status=status,
        serving_version=version.version,
        version_id=version.id,
        budget_redemptions_left=left[0],
        budget_value_left=left[1],
        code_mode=offer.code_mode,
        shared_code=offer.shared_code,
        refreshed_at=utcnow(),
    )
    if row is None:
        row = LiveOffer(tenant_id=key[0], partnership_id=key[1], offer_id=key[2], **values)
        _touch(session, placement)
    else:
        if any(getattr(row, name) != value for name, value in values.items() if name != "refreshed_at"):
            _touch(session, placement)
        for name, value in values.items():
            setattr(row, name, value)
    session.add(row)


def feed_key(partnership_id: str, offer_id: str) -> str:
    """The key of a hosted offer in the host's `partner_offers` change feed."""
    return f"{partnership_id}/{offer_id}"


def _touch(session: Session, placement: placements.OfferPlacement) -> None:
    key = feed_key(placement.partnership_id, placement.offer_id)
    changes.touch(session, placement.tenant_id, changes.Feed.partner_offers, key)


_VERSION_FIELDS = (
    "kind",
    "title",
    "description",
    "landing_url",
    "currency",
    "percent_off_bps",
    "amount_off",
    "friend_amount_off",
    "minimum_order",
    "starts_at",
    "ends_at",
    "public_sale_starts_at",
    "categories",
    "price_min",
    "price_max",
    "customer_type",
    "min_lifetime_value",
    "regions",
    "risk_levels",
    "lifetime_value_bands",
)


def rows_for_offer(session: Session, offering_tenant_id: str, offer_id: str) -> dict[str, LiveOffer]:
    """The hosts' live rows of an offer, by partnership id (read through the owner's own placements)."""
    found = {}
    for placement in placements.for_offer(session, offering_tenant_id, offer_id):
        row = session.get(LiveOffer, (placement.partner_tenant_id, placement.partnership_id, offer_id))
        if row is not None:
            found[placement.partnership_id] = row
    return found
