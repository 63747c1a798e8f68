"""Reading an endpoint's delivery log, and replaying events to a tenant's endpoints.

A replay adds new deliveries of the same events: same body, same `webhook-id` (the event id), so a
receiver that deduplicates on `webhook-id` handles a replay like any retry. A tenant sees and
replays only the events meant for it: those whose recipient it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from partners import webhooks
from partners.db import keyset_page, owned
from partners.deliveries import DeliveryStatus, WebhookAttempt, WebhookDelivery, new_delivery
from partners.errors import Conflict, Invalid, NotFound
from partners.outbox import OutboxEvent

MAX_REPLAY = 10_000


@dataclass(frozen=True)
class LoggedDelivery:
    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]


def list_deliveries(
    session: Session,
    tenant_id: str,
    endpoint_id: str,
    *,
    status: DeliveryStatus | None,
    after: str | None,
    limit: int,
) -> tuple[list[LoggedDelivery], bool]:
    """One page of an endpoint's deliveries in creation order, each with its attempts."""
    webhooks.get_endpoint(session, tenant_id, endpoint_id)
    query = owned(WebhookDelivery, tenant_id).where(col(WebhookDelivery.endpoint_id) == endpoint_id)
    if status is not None:
        query = query.where(col(WebhookDelivery.status) == status)
    rows, more = keyset_page(session, query, WebhookDelivery, after, limit)
    attempts: dict[str, list[WebhookAttempt]] = {row.id: [] for row in rows}
    if rows:
        found = session.exec(
            owned(WebhookAttempt, tenant_id)
            .where(col(WebhookAttempt.delivery_id).in_(list(attempts)))
            .order_by(col(WebhookAttempt.id))
        ).all()
        for attempt in found:
            attempts[attempt.delivery_id].append(attempt)
    return [LoggedDelivery(row, attempts[row.id]) for row in rows], more


def events_for(tenant_id: str) -> SelectOfScalar[OutboxEvent]:
    """The outbox events whose recipient is `tenant_id` (its own, and its partners' meant for it)."""
    own = and_(col(OutboxEvent.tenant_id) == tenant_id, col(OutboxEvent.recipient_tenant_id).is_(None))
    return select(OutboxEvent).where(or_(col(OutboxEvent.recipient_tenant_id) == tenant_id, own))


def replay_event(session: Session, tenant_id: str, event_id: str, *, now: datetime) -> int:
    """Deliver one event again to each of the tenant's enabled endpoints subscribed to it."""
    event = session.exec(events_for(tenant_id).where(col(OutboxEvent.id) == event_id)).first()
    if event is None:
        raise NotFound(f"No event with id '{event_id}'.", param="event_id")
    endpoints = webhooks.subscribed(session, tenant_id, event.type)
    session.add_all(new_delivery(endpoint, event, now) for endpoint in endpoints)
    session.flush()
    return len(endpoints)


def _type_filter(patterns: Sequence[str]) -> ColumnElement[bool]:
    exact = [p for p in patterns if not p.endswith(".*")]
    families = [col(OutboxEvent.type).startswith(p[:-1], autoescape=True) for p in patterns if p.endswith(".*")]
    return or_(col(OutboxEvent.type).in_(exact), *families)


def replay_since(
    session: Session, tenant_id: str, endpoint_id: str, since: datetime, until: datetime | None, *, now: datetime
) -> int:
    """Deliver again to one endpoint every event it subscribes to, created in [since, until)."""
    endpoint = webhooks.get_endpoint(session, tenant_id, endpoint_id)
    until = until or now
    if since >= until:
        raise Invalid("`since` must be before `until` (and before now).", param="since")
    if not endpoint.enabled:
        raise Conflict("This endpoint is disabled; enable it before replaying to it.", param="id")
    query = (
        events_for(tenant_id)
        .where(
            col(OutboxEvent.created_at) >= since,
            col(OutboxEvent.created_at) < until,
            # Events not handed out yet will be delivered anyway.
            col(OutboxEvent.delivered_at).is_not(None),
            _type_filter(endpoint.events),
        )
        .order_by(col(OutboxEvent.created_at), col(OutboxEvent.id))
        .limit(MAX_REPLAY + 1)
    )
    events = session.exec(query).all()
    if len(events) > MAX_REPLAY:
        raise Invalid(
            f"More than {MAX_REPLAY} events in this window; replay a shorter one (set `until`).", param="until"
        )
    session.add_all(new_delivery(endpoint, event, now) for event in events)
    session.flush()
    return len(events)
