"""Offer feeds: register the URL on your systems that Partnerloop pulls your offers from, and read its runs."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth.principal import OffersRead, OffersWrite
from api.deps import SessionDep, SettingsDep
from api.etags import ConditionalRoute
from api.pagination import Page, Paging
from partners import offer_feeds
from partners.egress import policy_from

router = APIRouter(prefix="/v1", tags=["offer feeds"], route_class=ConditionalRoute)


class OfferFeedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=offer_feeds.MAX_URL_LENGTH, description='Answers {"offers": [...]}')
    token_url: str = Field(min_length=1, max_length=offer_feeds.MAX_URL_LENGTH, description="Your OAuth token URL")
    client_id: str = Field(min_length=1, max_length=255)
    client_secret: str = Field(min_length=1, max_length=1000, description="Stored encrypted; never shown again")
    scope: str | None = Field(default=None, max_length=500, description="Scopes to ask your server for, if any")
    interval_seconds: int = Field(
        default=int(offer_feeds.DEFAULT_INTERVAL.total_seconds()), ge=60, le=86_400, description="How often to pull"
    )


class OfferFeedOut(BaseModel):
    id: str
    url: str
    token_url: str
    client_id: str
    scope: str | None
    interval_seconds: int
    enabled: bool
    next_sync_at: datetime
    consecutive_failures: int = Field(description="Failed runs in a row; the feed backs off while it fails")
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    created_at: datetime


class ItemErrorOut(BaseModel):
    index: int = Field(description="Position in the feed's offers list")
    external_id: str | None
    param: str | None
    error: str


class SyncRunOut(BaseModel):
    id: str
    feed_id: str
    status: offer_feeds.RunStatus
    started_at: datetime
    finished_at: datetime
    items: int
    created: int
    updated: int
    unchanged: int
    failed: int
    error: str | None = Field(description="Why the feed could not be read (failed runs)")
    item_errors: list[ItemErrorOut] = Field(description="The refused items (the first 100)")


def _out(feed: offer_feeds.OfferFeed) -> OfferFeedOut:
    return OfferFeedOut.model_validate(feed, from_attributes=True)


def _run_out(run: offer_feeds.OfferSyncRun) -> SyncRunOut:
    return SyncRunOut.model_validate(run.model_dump())


@router.post("/offer-feeds", status_code=201, summary="Register an offer feed (pulled at once, then on schedule)")
def register_feed(body: OfferFeedIn, caller: OffersWrite, session: SessionDep, settings: SettingsDep) -> OfferFeedOut:
    data = offer_feeds.FeedInput(
        url=body.url,
        token_url=body.token_url,
        client_id=body.client_id,
        client_secret=body.client_secret,
        scope=body.scope,
        interval=timedelta(seconds=body.interval_seconds),
    )
    feed = offer_feeds.register(
        session,
        caller.tenant_id,
        data,
        policy=policy_from(settings),
        encryption_key=settings.encryption_key.get_secret_value(),
    )
    return _out(feed)


@router.get("/offer-feeds", summary="Your offer feeds")
def list_feeds(caller: OffersRead, session: SessionDep, paging: Paging) -> Page[OfferFeedOut]:
    rows, more = offer_feeds.list_feeds(session, caller.tenant_id, paging.after, paging.limit)
    return paging.page([_out(f) for f in rows], more, rows[-1].id if rows else None)


@router.get("/offer-feeds/{feed_id}", summary="An offer feed and how its last run went")
def get_feed(feed_id: str, caller: OffersRead, session: SessionDep) -> OfferFeedOut:
    return _out(offer_feeds.get(session, caller.tenant_id, feed_id))


@router.delete("/offer-feeds/{feed_id}", status_code=204, summary="Stop pulling a feed (its offers stay)")
def delete_feed(feed_id: str, caller: OffersWrite, session: SessionDep) -> Response:
    offer_feeds.remove(session, caller.tenant_id, feed_id)
    return Response(status_code=204)


@router.get("/offer-feeds/{feed_id}/runs", summary="The feed's sync runs, oldest first, with refused items")
def list_runs(feed_id: str, caller: OffersRead, session: SessionDep, paging: Paging) -> Page[SyncRunOut]:
    rows, more = offer_feeds.runs(session, caller.tenant_id, feed_id, paging.after, paging.limit)
    return paging.page([_run_out(r) for r in rows], more, rows[-1].id if rows else None)
