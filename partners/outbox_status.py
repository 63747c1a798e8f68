"""How far behind the outbox and the webhook deliveries are: the operator's view, across tenants.

`depth` reads only what the partial indexes on pending rows cover, so it is cheap enough to run on
every metrics scrape. `report` adds what an operator asks for now and then (`partnerloop outbox
status`): deliveries by status and the disabled endpoints, which read whole tables.
Nothing here is shown to a tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, text
from sqlmodel import Session, col, select

from partners.deliveries import DeliveryStatus, WebhookDelivery
from partners.outbox import OutboxEvent
from partners.webhooks import WebhookEndpoint


@dataclass(frozen=True)
class Depth:
    """The backlog now: events not yet handed to deliveries, and deliveries not yet settled."""

    pending_events: int
    oldest_pending_event_at: datetime | None
    pending_deliveries: int
    due_deliveries: int
    oldest_due_delivery_at: datetime | None
    disabled_endpoints: int

    def oldest_pending_event_age(self, now: datetime) -> float:
        """Seconds the oldest pending event has waited (0 when none waits)."""
        return _age(self.oldest_pending_event_at, now)

    def oldest_due_delivery_age(self, now: datetime) -> float:
        """Seconds the longest-overdue delivery has been due (0 when none is)."""
        return _age(self.oldest_due_delivery_at, now)


@dataclass(frozen=True)
class DisabledEndpoint:
    tenant_id: str
    endpoint_id: str
    url: str
    reason: str | None
    disabled_at: datetime | None


@dataclass(frozen=True)
class Report:
    depth: Depth
    deliveries_by_status: dict[str, int]
    disabled: list[DisabledEndpoint]


def _age(since: datetime | None, now: datetime) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


def depth(session: Session, *, now: datetime, tenant_id: str | None = None) -> Depth:
    """The backlog, for every tenant or one (the tenant whose data changed, or whose endpoint it is)."""
    # The literal predicates (not bound parameters) let PostgreSQL use the partial indexes.
    events = select(func.count(), func.min(col(OutboxEvent.created_at))).where(text("delivered_at IS NULL"))
    pending = select(func.count()).select_from(WebhookDelivery).where(text("status = 'pending'"))
    due = select(func.count(), func.min(col(WebhookDelivery.next_attempt_at))).where(
        text("status = 'pending'"), col(WebhookDelivery.next_attempt_at) <= now
    )
    disabled = select(func.count()).select_from(WebhookEndpoint).where(col(WebhookEndpoint.enabled).is_(False))
    if tenant_id is not None:
        events = events.where(col(OutboxEvent.tenant_id) == tenant_id)
        pending = pending.where(col(WebhookDelivery.tenant_id) == tenant_id)
        due = due.where(col(WebhookDelivery.tenant_id) == tenant_id)
        disabled = disabled.where(col(WebhookEndpoint.tenant_id) == tenant_id)
    event_count, oldest_event = session.exec(events).one()
    due_count, oldest_due = session.exec(due).one()
    return Depth(
        pending_events=event_count,
        oldest_pending_event_at=oldest_event,
        pending_deliveries=session.exec(pending).one(),
        due_deliveries=due_count,
        oldest_due_delivery_at=oldest_due,
        disabled_endpoints=session.exec(disabled).one(),
    )


def report(session: Session, *, now: datetime, tenant_id: str | None = None) -> Report:
    """The backlog, every delivery counted by status, and the disabled endpoints (newest first)."""
    by_status = select(col(WebhookDelivery.status), func.count()).group_by(col(WebhookDelivery.status))
    endpoints = (
        select(WebhookEndpoint)
        .where(col(WebhookEndpoint.enabled).is_(False))
        .order_by(col(WebhookEndpoint.disabled_at).desc())
    )
    if tenant_id is not None:
        by_status = by_status.where(col(WebhookDelivery.tenant_id) == tenant_id)
        endpoints = endpoints.where(col(WebhookEndpoint.tenant_id) == tenant_id)
    counts = {str(status): 0 for status in DeliveryStatus}
    counts.update(dict(session.exec(by_status).all()))
    disabled = [
        DisabledEndpoint(e.tenant_id, e.id, e.url, e.disabled_reason, e.disabled_at)
        for e in session.exec(endpoints).all()
    ]
    return Report(depth(session, now=now, tenant_id=tenant_id), counts, disabled)
