"""The outbox: events a change causes, written in the same transaction as the change.

A row is owned by the tenant whose data changed. Its recipient — the tenant whose webhook endpoints
receive it — is, in this order: the `recipient` given to `emit`; else `payload["partner_id"]` when
the payload has one (the partner tenant the event is meant for); else the owning tenant itself
(stored as NULL).

The worker hands each row to webhook deliveries (`partners.deliveries.dispatch`, one delivery per
subscribed endpoint of the recipient) and sets `delivered_at` in that same transaction: until then
the row is pending here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, text
from sqlmodel import Field, Session, SQLModel, col

from partners.db import UTCDateTime, owned, utcnow
from partners.ids import new_id
from partners.webhook_events import payload_version

_PENDING = "delivered_at IS NULL"
CONSENT_WITHDRAWN = "consent.withdrawn"
ERASURE_REQUESTED = "erasure.requested"


class OutboxEvent(SQLModel, table=True):
    __tablename__ = "outbox_events"
    __table_args__ = (
        # The worker reads only the rows not yet handed to deliveries, in id (= time) order.
        Index("ix_outbox_events_pending", "id", sqlite_where=text(_PENDING), postgresql_where=text(_PENDING)),
        # Replays read the events meant for a tenant, by time.
        Index("ix_outbox_events_recipient", "recipient_tenant_id", "created_at"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(default_factory=lambda: new_id("evt"), primary_key=True, max_length=40)
    type: str = Field(max_length=100)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # The shape of `payload` (the webhook body's `version`), fixed when the event is written.
    payload_version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The tenant whose webhook endpoints receive the event; NULL for the owning tenant itself.
    recipient_tenant_id: str | None = Field(default=None, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")

    @property
    def recipient(self) -> str:
        return self.recipient_tenant_id or self.tenant_id


def emit(
    session: Session, tenant_id: str, event_type: str, payload: dict[str, Any], *, recipient: str | None = None
) -> OutboxEvent:
    """Queue an event in the caller's transaction: it exists exactly when the change does."""
    if recipient is None and isinstance(payload.get("partner_id"), str):
        recipient = payload["partner_id"]
    event = OutboxEvent(
        tenant_id=tenant_id,
        type=event_type,
        payload=payload,
        payload_version=payload_version(event_type),
        recipient_tenant_id=None if recipient == tenant_id else recipient,
    )
    session.add(event)
    session.flush()
    return event


def pending(session: Session, tenant_id: str, event_type: str | None = None) -> Sequence[OutboxEvent]:
    """The tenant's undelivered events, oldest first, optionally of one type."""
    query = owned(OutboxEvent, tenant_id).where(col(OutboxEvent.delivered_at).is_(None))
    if event_type is not None:
        query = query.where(col(OutboxEvent.type) == event_type)
    return session.exec(query.order_by(col(OutboxEvent.id))).all()
