"""Webhook deliveries: outbox events fanned out to endpoints, claimed by workers, attempted, logged.

1. `dispatch` takes pending outbox events (FOR UPDATE SKIP LOCKED on PostgreSQL) and, in the same
   transaction that marks each one handed out, adds one delivery per subscribed, enabled endpoint
   of the event's recipient.
2. `claim` takes due deliveries the same way and leases them (`locked_until`, `lock_token`) in a
   short transaction; the HTTP call happens after it committed. A worker killed mid-call leaves a
   lease that expires, and another worker retries with the same body and `webhook-id`.
3. `record` logs the attempt (`webhook_attempts`, the delivery log) and settles the delivery: 2xx
   succeeds; 410 disables the endpoint; anything else is retried on `retry_schedule`, and an
   endpoint failing for `disable_after` is disabled and its owner told (`webhook_endpoint.disabled`).

Every claim and every hand-out is a conditional UPDATE checked by its row count, which keeps them
exclusive on SQLite too, where FOR UPDATE is not rendered and writers are serialised.
"""

from __future__ import annotations

import logging
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, ForeignKeyConstraint, Index, Text, and_, or_, text, update
from sqlmodel import Field, Session, SQLModel, col, select

from partners import outbox, retry_schedule, webhook_events, webhooks
from partners.db import UTCDateTime, utcnow
from partners.egress import Reply
from partners.ids import new_id
from partners.outbox import OutboxEvent
from partners.webhooks import DisabledReason, WebhookEndpoint

log = logging.getLogger("partnerloop.deliveries")
ENDPOINT_DISABLED = "webhook_endpoint.disabled"
_PENDING = "status = 'pending'"


class DeliveryStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"  # gave up: every attempt failed, or the endpoint answered 410
    cancelled = "cancelled"  # the endpoint was disabled before it succeeded


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"], ["webhook_endpoints.tenant_id", "webhook_endpoints.id"], ondelete="CASCADE"
        ),
        # Workers read only the deliveries still pending, by when they are due.
        Index(
            "ix_webhook_deliveries_due", "next_attempt_at", sqlite_where=text(_PENDING), postgresql_where=text(_PENDING)
        ),
        Index("ix_webhook_deliveries_endpoint", "tenant_id", "endpoint_id", "id"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(default_factory=lambda: new_id("whd"), primary_key=True, max_length=40)
    endpoint_id: str = Field(max_length=40)
    # The outbox event: its id is the `webhook-id`, the same for every attempt and replay.
    event_id: str = Field(max_length=40)
    event_type: str = Field(max_length=100)
    body: str = Field(sa_type=Text)
    status: str = Field(default=DeliveryStatus.pending, max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lock_token: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookAttempt(SQLModel, table=True):
    """One HTTP attempt of a delivery: the delivery log."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "delivery_id"], ["webhook_deliveries.tenant_id", "webhook_deliveries.id"], ondelete="CASCADE"
        ),
        Index("ix_webhook_attempts_delivery", "tenant_id", "delivery_id"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(default_factory=lambda: new_id("wha"), primary_key=True, max_length=40)
    delivery_id: str = Field(max_length=40)
    attempt: int
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    duration_ms: int = 0
    response_excerpt: str = Field(default="", max_length=1024)


@dataclass(frozen=True)
class Claim:
    """A leased delivery and everything needed to attempt it without the database."""

    tenant_id: str
    delivery_id: str
    endpoint_id: str
    url: str
    event_id: str
    body: bytes
    signing_secrets: tuple[str, ...]
    token: str
    attempt: int


def new_delivery(endpoint: WebhookEndpoint, event: OutboxEvent, now: datetime) -> WebhookDelivery:
    """A pending delivery of `event` to `endpoint`, due now."""
    body = webhook_events.render_body(
        event.id, event.type, event.created_at, event.tenant_id, event.recipient, event.payload, event.payload_version
    )
    return WebhookDelivery(
        tenant_id=endpoint.tenant_id,
        endpoint_id=endpoint.id,
        event_id=event.id,
        event_type=event.type,
        body=body.decode(),
        next_attempt_at=now,
        created_at=now,
    )


def dispatch(session: Session, *, now: datetime, limit: int = 100) -> int:
    """Hand pending outbox events to deliveries; returns how many events were handed out."""
    query = (
        select(OutboxEvent)
        .where(col(OutboxEvent.delivered_at).is_(None))
        .order_by(col(OutboxEvent.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    handed = 0
    endpoints: dict[tuple[str, str], list[WebhookEndpoint]] = {}
    for event in session.exec(query).all():
        mark = (
            update(OutboxEvent)
            .where(
                col(OutboxEvent.tenant_id) == event.tenant_id,
                col(OutboxEvent.id) == event.id,
                col(OutboxEvent.delivered_at).is_(None),
            )
            .values(delivered_at=now)
        )
        if session.exec(mark).rowcount != 1:
            continue  # another worker handed it out first
        key = (event.recipient, event.type)
        if key not in endpoints:
            endpoints[key] = webhooks.subscribed(session, event.recipient, event.type)
        session.add_all(new_delivery(endpoint, event, now) for endpoint in endpoints[key])
        handed += 1
    session.flush()
    return handed


def claim(session: Session, *, now: datetime, lease: timedelta, limit: int, encryption_key: str) -> list[Claim]:
    """Lease up to `limit` due deliveries for one worker until `now + lease`."""
    free = or_(col(WebhookDelivery.locked_until).is_(None), col(WebhookDelivery.locked_until) <= now)
    pending = col(WebhookDelivery.status) == DeliveryStatus.pending
    query = (
        select(WebhookDelivery)
        # The literal predicate (not a bound parameter) lets PostgreSQL use the partial index.
        .where(text(_PENDING), col(WebhookDelivery.next_attempt_at) <= now, free)
        .order_by(col(WebhookDelivery.next_attempt_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    token = secrets.token_hex(16)
    claims: list[Claim] = []
    for row in session.exec(query).all():
        endpoint = session.get(WebhookEndpoint, (row.tenant_id, row.endpoint_id))
        if endpoint is None or not endpoint.enabled:
            _cancel(session, row.tenant_id, col(WebhookDelivery.id) == row.id, now)
            continue
        lease_it = (
            update(WebhookDelivery)
            .where(col(WebhookDelivery.tenant_id) == row.tenant_id, col(WebhookDelivery.id) == row.id, pending, free)
            .values(locked_until=now + lease, lock_token=token, attempts=col(WebhookDelivery.attempts) + 1)
            .returning(col(WebhookDelivery.attempts))
        )
        attempt = session.exec(lease_it).scalar_one_or_none()
        if attempt is None:
            continue  # another worker leased it first
        keys = webhooks.signing_secrets(endpoint, encryption_key, now)
        body = row.body.encode()
        claims.append(Claim(row.tenant_id, row.id, endpoint.id, endpoint.url, row.event_id, body, keys, token, attempt))
    return claims


def _cancel(session: Session, tenant_id: str, which: ColumnElement[bool], now: datetime) -> None:
    """Cancel the tenant's pending deliveries that `which` selects."""
    query = update(WebhookDelivery).where(
        col(WebhookDelivery.tenant_id) == tenant_id, col(WebhookDelivery.status) == DeliveryStatus.pending, which
    )
    session.exec(query.values(status=DeliveryStatus.cancelled, finished_at=now, locked_until=None))


def record(
    session: Session,
    leased: Claim,
    reply: Reply,
    *,
    now: datetime,
    disable_after: timedelta,
    rng: random.Random | None = None,
) -> WebhookDelivery | None:
    """Log one attempt and settle its delivery; None when the delivery no longer exists."""
    key = (col(WebhookDelivery.tenant_id) == leased.tenant_id, col(WebhookDelivery.id) == leased.delivery_id)
    release = (
        update(WebhookDelivery)
        .where(*key, col(WebhookDelivery.lock_token) == leased.token)
        .values(locked_until=None, lock_token=None, last_attempt_at=now)
    )
    still_mine = session.exec(release).rowcount == 1
    delivery = session.exec(select(WebhookDelivery).where(*key).execution_options(populate_existing=True)).first()
    if delivery is None:
        return None  # its endpoint was deleted meanwhile
    session.add(
        WebhookAttempt(
            tenant_id=leased.tenant_id,
            delivery_id=leased.delivery_id,
            attempt=leased.attempt,
            at=now - timedelta(milliseconds=reply.duration_ms),
            status_code=reply.status_code,
            error=reply.error[:500] if reply.error else None,
            duration_ms=reply.duration_ms,
            response_excerpt=reply.excerpt[:1024],
        )
    )
    if still_mine:
        _settle(session, delivery, reply, now=now, disable_after=disable_after, rng=rng)
    # Otherwise our lease ran out and another worker holds the delivery now: it settles it.
    session.flush()
    return delivery


def _settle(
    session: Session,
    delivery: WebhookDelivery,
    reply: Reply,
    *,
    now: datetime,
    disable_after: timedelta,
    rng: random.Random | None,
) -> None:
    if reply.ok:
        delivery.status, delivery.finished_at = DeliveryStatus.succeeded, now
        endpoint_key = (
            col(WebhookEndpoint.tenant_id) == delivery.tenant_id,
            col(WebhookEndpoint.id) == delivery.endpoint_id,
            col(WebhookEndpoint.failing_since).is_not(None),
        )
        session.exec(update(WebhookEndpoint).where(*endpoint_key).values(failing_since=None))
    elif reply.status_code == 410:
        disable_endpoint(session, delivery.tenant_id, delivery.endpoint_id, DisabledReason.gone, now=now, notify=True)
        delivery.status, delivery.finished_at = DeliveryStatus.failed, now
    else:
        retry_after = retry_schedule.parse_retry_after(reply.retry_after, now)
        delay = retry_schedule.retry_delay(delivery.attempts, rng=rng, retry_after=retry_after)
        disabled = _note_failure(session, delivery, now=now, disable_after=disable_after)
        if delay is None:
            delivery.status, delivery.finished_at = DeliveryStatus.failed, now
        elif disabled:
            delivery.status, delivery.finished_at = DeliveryStatus.cancelled, now
        else:
            delivery.next_attempt_at = now + delay
    session.add(delivery)


def _note_failure(session: Session, delivery: WebhookDelivery, *, now: datetime, disable_after: timedelta) -> bool:
    """Mark the endpoint failing since now unless it already was; disable it if that was long ago."""
    key = (col(WebhookEndpoint.tenant_id) == delivery.tenant_id, col(WebhookEndpoint.id) == delivery.endpoint_id)
    session.exec(
        update(WebhookEndpoint).where(*key, col(WebhookEndpoint.failing_since).is_(None)).values(failing_since=now)
    )
    endpoint = session.exec(select(WebhookEndpoint).where(*key).execution_options(populate_existing=True)).one()
    since = endpoint.failing_since
    if not endpoint.enabled or since is None or now - since < disable_after:
        return False
    disable_endpoint(session, endpoint.tenant_id, endpoint.id, DisabledReason.failing, now=now, notify=True)
    return True


def disable_endpoint(
    session: Session, tenant_id: str, endpoint_id: str, reason: DisabledReason, *, now: datetime, notify: bool
) -> WebhookEndpoint:
    """Stop delivering to an endpoint: its pending deliveries are cancelled (replay them later)."""
    endpoint = webhooks.get_endpoint(session, tenant_id, endpoint_id, for_update=True)
    if not endpoint.enabled:
        return endpoint
    endpoint.enabled, endpoint.disabled_at, endpoint.disabled_reason = False, now, reason
    endpoint.updated_at = now
    session.add(endpoint)
    # Deliveries leased by a worker right now are left to it (it may be recording them): if they
    # fail, the next claim finds the endpoint disabled and cancels them. No lock waits, no deadlock.
    unleased = or_(col(WebhookDelivery.locked_until).is_(None), col(WebhookDelivery.locked_until) <= now)
    _cancel(session, tenant_id, and_(col(WebhookDelivery.endpoint_id) == endpoint_id, unleased), now)
    if notify:
        log.warning("webhook endpoint %s of %s disabled: %s", endpoint_id, tenant_id, reason)
        payload = {"endpoint_id": endpoint.id, "url": endpoint.url, "reason": str(reason)}
        outbox.emit(session, tenant_id, ENDPOINT_DISABLED, payload)
    session.flush()
    return endpoint
