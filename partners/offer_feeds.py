"""Offer feeds: a tenant's URL on its own systems that the worker pulls offers from, and its sync runs.

The feed is read with OAuth 2 client credentials issued by the tenant's own authorization server; we
must present the client secret, so it is encrypted at rest (`partners.crypto.encrypt`, key
`PARTNERLOOP_ENCRYPTION_KEY`) and never shown again. `next_sync_at` schedules the feed and doubles as
the lease a worker takes while syncing it (`partners.offer_sync`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKeyConstraint, Index
from sqlmodel import Field, Session, SQLModel, col

from partners.crypto import encrypt
from partners.db import UTCDateTime, get_owned, keyset_page, owned, utcnow
from partners.egress import EgressPolicy, EgressRefused, check_url
from partners.errors import Conflict, Invalid
from partners.ids import new_id

MAX_URL_LENGTH = 2000
MAX_FEEDS_PER_TENANT = 10
MIN_INTERVAL = timedelta(minutes=1)
MAX_INTERVAL = timedelta(days=1)
DEFAULT_INTERVAL = timedelta(minutes=15)


class RunStatus(StrEnum):
    succeeded = "succeeded"  # every item applied
    partial = "partial"  # the feed was read; some items were refused (see item_errors)
    failed = "failed"  # the feed could not be read (the partner is down, refused our token, sent garbage)


class OfferFeed(SQLModel, table=True):
    __tablename__ = "offer_feeds"
    __table_args__ = (Index("ix_offer_feeds_due", "next_sync_at"),)

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(default_factory=lambda: new_id("ofd"), primary_key=True, max_length=40)
    url: str = Field(max_length=MAX_URL_LENGTH)
    token_url: str = Field(max_length=MAX_URL_LENGTH)
    client_id: str = Field(max_length=255)
    client_secret_encrypted: str = Field(max_length=2000)
    scope: str | None = Field(default=None, max_length=500)
    interval_seconds: int = int(DEFAULT_INTERVAL.total_seconds())
    enabled: bool = True
    # When the worker next pulls the feed; moved ahead by the lease while a worker is syncing it.
    next_sync_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    consecutive_failures: int = 0
    last_run_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_success_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OfferSyncRun(SQLModel, table=True):
    """One pull of an offer feed: what it did, and the items it refused (with why)."""

    __tablename__ = "offer_sync_runs"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "feed_id"], ["offer_feeds.tenant_id", "offer_feeds.id"], ondelete="CASCADE"),
        Index("ix_offer_sync_runs_feed", "tenant_id", "feed_id", "id"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40)
    id: str = Field(default_factory=lambda: new_id("osr"), primary_key=True, max_length=40)
    feed_id: str = Field(max_length=40)
    status: str = Field(max_length=20)
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime = Field(sa_type=UTCDateTime)
    items: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    error: str | None = Field(default=None, max_length=500)
    # [{"index": n, "external_id": str | None, "param": str | None, "error": str}], the first MAX_ITEM_ERRORS.
    item_errors: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)


@dataclass(frozen=True)
class FeedInput:
    url: str
    token_url: str
    client_id: str
    client_secret: str
    scope: str | None = None
    interval: timedelta = DEFAULT_INTERVAL


def _checked_url(url: str, param: str, policy: EgressPolicy) -> str:
    if len(url) > MAX_URL_LENGTH:
        raise Invalid(f"The URL is longer than {MAX_URL_LENGTH} characters.", param=param)
    try:
        return check_url(url, policy)
    except EgressRefused as exc:
        raise Invalid(f"We cannot call this URL: {exc}.", param=param) from exc


def register(
    session: Session, tenant_id: str, data: FeedInput, *, policy: EgressPolicy, encryption_key: str
) -> OfferFeed:
    """A new feed, due at once; the client secret is stored encrypted."""
    if not MIN_INTERVAL <= data.interval <= MAX_INTERVAL:
        raise Invalid("The interval is between 60 seconds and one day.", param="interval_seconds")
    if not data.client_id or not data.client_secret:
        raise Invalid("Give the client id and secret of the feed's OAuth client.", param="client_secret")
    if len(session.exec(owned(OfferFeed, tenant_id)).all()) >= MAX_FEEDS_PER_TENANT:
        raise Conflict(f"A tenant has at most {MAX_FEEDS_PER_TENANT} offer feeds.", param="url")
    feed = OfferFeed(
        tenant_id=tenant_id,
        url=_checked_url(data.url, "url", policy),
        token_url=_checked_url(data.token_url, "token_url", policy),
        client_id=data.client_id,
        client_secret_encrypted=encrypt(encryption_key, data.client_secret),
        scope=data.scope,
        interval_seconds=int(data.interval.total_seconds()),
    )
    session.add(feed)
    session.flush()
    return feed


def get(session: Session, tenant_id: str, feed_id: str) -> OfferFeed:
    """The tenant's feed; NotFound for another tenant's as for a missing one."""
    return get_owned(session, OfferFeed, tenant_id, feed_id)


def list_feeds(session: Session, tenant_id: str, after: str | None, limit: int) -> tuple[Sequence[OfferFeed], bool]:
    """One page of the tenant's feeds, in registration order."""
    return keyset_page(session, owned(OfferFeed, tenant_id), OfferFeed, after, limit)


def remove(session: Session, tenant_id: str, feed_id: str) -> None:
    """Forget a feed and its runs (the offers it brought stay)."""
    session.delete(get(session, tenant_id, feed_id))
    session.flush()


def runs(
    session: Session, tenant_id: str, feed_id: str, after: str | None, limit: int
) -> tuple[Sequence[OfferSyncRun], bool]:
    """One page of the feed's runs, oldest first."""
    get(session, tenant_id, feed_id)
    query = owned(OfferSyncRun, tenant_id).where(col(OfferSyncRun.feed_id) == feed_id)
    return keyset_page(session, query, OfferSyncRun, after, limit)
