"""Change feeds for pull-based sync: what changed since a cursor, in order, never skipping a change."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Generic, Literal, TypeVar

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.auth.principal import ConsentsWrite, OffersRead, ReportsRead
from api.deps import SessionDep, SettingsDep
from api.pagination import decode_cursor, encode_cursor
from api.routes.offer_schemas import VersionOut, version_out
from api.views.consents import ConsentEventOut, event_out
from partners import change_feeds
from partners.changes import Feed
from partners.errors import Invalid
from partners.offer_rules import OfferState

router = APIRouter(prefix="/v1/changes", tags=["change feeds"])

T = TypeVar("T")
R = TypeVar("R")


class ChangePage(BaseModel, Generic[T]):
    """Changes after your cursor, oldest first. Store `next_cursor` and pass it back as `cursor`."""

    data: list[T]
    next_cursor: str = Field(description="Where to resume; returned even when `data` is empty")
    has_more: bool = Field(description="More changes follow at once; else poll again later with next_cursor")


@dataclass(frozen=True)
class FeedRequest:
    after: int
    limit: int
    secret: bytes


def _feed_request(feed: Feed) -> Callable[..., FeedRequest]:
    def parse(
        settings: SettingsDep,
        limit: Annotated[int, Query(ge=1, le=500, description="Items per page (1–500).")] = 100,
        cursor: Annotated[
            str | None, Query(max_length=512, description="`next_cursor` of the page before; none: from the start")
        ] = None,
    ) -> FeedRequest:
        secret = settings.secret_key.get_secret_value().encode()
        after = 0
        if cursor:
            name, _, number = decode_cursor(secret, cursor).partition(":")
            if name != feed or not number.isdigit():
                raise Invalid("This cursor belongs to another feed; start again without `cursor`.", param="cursor")
            after = int(number)
        return FeedRequest(after, limit, secret)

    return parse


def _page(feed: Feed, request: FeedRequest, items: Sequence[T], more: bool, last: int) -> ChangePage[T]:
    return ChangePage[T](data=list(items), next_cursor=encode_cursor(request.secret, f"{feed}:{last}"), has_more=more)


def _read(
    feed: Feed,
    request: FeedRequest,
    session: Session,
    tenant_id: str,
    reader: Callable[[Session, str, int, int], tuple[list[R], bool, int]],
    shape: Callable[[R], T],
) -> ChangePage[T]:
    rows, more, last = reader(session, tenant_id, request.after, request.limit)
    return _page(feed, request, [shape(row) for row in rows], more, last)


class OfferStateOut(BaseModel):
    id: str
    external_id: str | None
    state: OfferState
    latest_version: int
    content: VersionOut = Field(description="The latest version")
    used_redemptions: int
    used_value: int
    updated_at: datetime


class OfferChangeOut(BaseModel):
    seq: int = Field(description="Position in your feed")
    offer_id: str
    changed_at: datetime
    removed: bool = Field(description="Archived (final) or gone: delete your copy")
    offer: OfferStateOut | None = Field(description="The offer now; null when gone")


def _offer_change(change: change_feeds.OfferChange) -> OfferChangeOut:
    offer, latest = change.offer, change.latest
    state = None
    if offer is not None and latest is not None:
        state = OfferStateOut(
            id=offer.id,
            external_id=offer.external_id,
            state=OfferState(offer.state),
            latest_version=offer.latest_version,
            content=version_out(latest),
            used_redemptions=offer.used_redemptions,
            used_value=offer.used_value,
            updated_at=offer.updated_at,
        )
    return OfferChangeOut(
        seq=change.seq, offer_id=change.offer_id, changed_at=change.changed_at, removed=change.removed, offer=state
    )


class ShowableOfferOut(BaseModel):
    offering_tenant_id: str
    serving_version: int
    kind: str
    title: str
    description: str
    landing_url: str
    currency: str
    percent_off: float | None
    amount_off: int | None
    friend_amount_off: int | None
    minimum_order: int | None
    starts_at: datetime
    ends_at: datetime | None
    public_sale_starts_at: datetime | None
    categories: list[str]
    regions: list[str]


class PartnerOfferChangeOut(BaseModel):
    seq: int
    offer_id: str
    partnership_id: str
    changed_at: datetime
    showable: bool = Field(description="You may show it (within its window, to consenting customers)")
    status: str = Field(description="'live', or why not: 'withdrawn', 'paused', 'partnership_paused', …")
    removed: bool = Field(description="Not showable: remove it from what you show")
    offer: ShowableOfferOut | None = Field(description="The approved version; null once withdrawn")


def _partner_offer_change(change: change_feeds.PartnerOfferChange) -> PartnerOfferChangeOut:
    row = change.row
    shown = None
    if row is not None:
        shown = ShowableOfferOut(
            offering_tenant_id=row.offering_tenant_id,
            serving_version=row.serving_version,
            kind=row.kind,
            title=row.title,
            description=row.description,
            landing_url=row.landing_url,
            currency=row.currency,
            percent_off=None if row.percent_off_bps is None else row.percent_off_bps / 100,
            amount_off=row.amount_off,
            friend_amount_off=row.friend_amount_off,
            minimum_order=row.minimum_order,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            public_sale_starts_at=row.public_sale_starts_at,
            categories=list(row.categories),
            regions=list(row.regions),
        )
    return PartnerOfferChangeOut(
        seq=change.seq,
        offer_id=change.offer_id,
        partnership_id=change.partnership_id,
        changed_at=change.changed_at,
        showable=change.showable,
        status=change.status,
        removed=not change.showable,
        offer=shown,
    )


class RedemptionStateOut(BaseModel):
    id: str
    partnership_id: str
    offer_id: str
    host_tenant_id: str
    offering_tenant_id: str
    order_id: str | None = Field(description="The offering shop's order id; null for the host")
    code: str | None = Field(description="The code used; null for the host")
    order_value: int
    currency: str
    commission_bps: int
    commission: int
    redeemed_at: datetime
    reversed_at: datetime | None


class RedemptionChangeOut(BaseModel):
    seq: int
    redemption_id: str
    changed_at: datetime
    role: Literal["offering", "host"] = Field(description="Your side: your offer, or you showed it")
    removed: bool
    redemption: RedemptionStateOut | None = Field(description="Now (reversed_at set once refunded)")


def _redemption_change(change: change_feeds.RedemptionChange) -> RedemptionChangeOut:
    found, mine = change.redemption, not change.as_host
    state = None
    if found is not None:
        state = RedemptionStateOut(
            id=found.id,
            partnership_id=found.partnership_id,
            offer_id=found.offer_id,
            host_tenant_id=found.host_tenant_id,
            offering_tenant_id=found.tenant_id,
            order_id=found.order_id if mine else None,
            code=found.code if mine else None,
            order_value=found.order_value,
            currency=found.currency,
            commission_bps=found.commission_bps,
            commission=found.commission,
            redeemed_at=found.redeemed_at,
            reversed_at=found.reversed_at,
        )
    return RedemptionChangeOut(
        seq=change.seq,
        redemption_id=change.redemption_id,
        changed_at=change.changed_at,
        role="offering" if mine else "host",
        removed=found is None,
        redemption=state,
    )


class ConsentEventChangeOut(BaseModel):
    seq: int
    id: str = Field(description="The event row's id (one per purpose)")
    changed_at: datetime
    removed: bool = Field(description="Erased with its customer: delete your copy")
    customer_external_id: str | None
    event: ConsentEventOut | None


def _consent_change(change: change_feeds.ConsentEventChange) -> ConsentEventChangeOut:
    return ConsentEventChangeOut(
        seq=change.seq,
        id=change.id,
        changed_at=change.changed_at,
        removed=change.event is None,
        customer_external_id=change.customer_external_id,
        event=event_out(change.event) if change.event is not None else None,
    )


OffersFeed = Annotated[FeedRequest, Depends(_feed_request(Feed.offers))]
PartnerOffersFeed = Annotated[FeedRequest, Depends(_feed_request(Feed.partner_offers))]
RedemptionsFeed = Annotated[FeedRequest, Depends(_feed_request(Feed.redemptions))]
ConsentFeed = Annotated[FeedRequest, Depends(_feed_request(Feed.consent_events))]


@router.get("/offers", summary="Your offers changed since the cursor (archived ones as tombstones)")
def offer_changes(caller: OffersRead, session: SessionDep, feed: OffersFeed) -> ChangePage[OfferChangeOut]:
    return _read(Feed.offers, feed, session, caller.tenant_id, change_feeds.offers_changed, _offer_change)


@router.get("/partner-offers", summary="Partners' approved offers you may show, changed since the cursor")
def partner_offer_changes(
    caller: OffersRead, session: SessionDep, feed: PartnerOffersFeed
) -> ChangePage[PartnerOfferChangeOut]:
    reader = change_feeds.partner_offers_changed
    return _read(Feed.partner_offers, feed, session, caller.tenant_id, reader, _partner_offer_change)


@router.get("/redemptions", summary="Redemptions of your offers, or at you as host, recorded or reversed")
def redemption_changes(
    caller: ReportsRead, session: SessionDep, feed: RedemptionsFeed
) -> ChangePage[RedemptionChangeOut]:
    reader = change_feeds.redemptions_changed
    return _read(Feed.redemptions, feed, session, caller.tenant_id, reader, _redemption_change)


@router.get("/consent-events", summary="Your consent events recorded (or erased) since the cursor")
def consent_event_changes(
    caller: ConsentsWrite, session: SessionDep, feed: ConsentFeed
) -> ChangePage[ConsentEventChangeOut]:
    reader = change_feeds.consent_events_changed
    return _read(Feed.consent_events, feed, session, caller.tenant_id, reader, _consent_change)
