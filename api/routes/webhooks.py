"""Webhook endpoints: create (secret shown once), list, change, rotate the secret, delete; the
delivery log of an endpoint; replay of one event or of everything since a time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool

from api.auth.principal import WebhooksWrite
from api.deps import SessionDep, SettingsDep
from api.etags import ConditionalRoute
from api.pagination import Page, Paging
from partners import deliveries, delivery_log, webhooks
from partners.db import utcnow
from partners.deliveries import DeliveryStatus
from partners.egress import policy_from
from partners.webhooks import DisabledReason, EndpointChanges, WebhookEndpoint

router = APIRouter(prefix="/v1", tags=["webhooks"], route_class=ConditionalRoute)

EventPatterns = Annotated[
    list[Annotated[str, Field(max_length=100)]],
    Field(min_length=1, max_length=50, description="Event types, or families such as `offer.*`"),
]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2000, description="https URL that receives POSTs")
    events: EventPatterns
    description: str = Field(default="", max_length=500)


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(default=None, min_length=1, max_length=2000)
    events: EventPatterns | None = None
    description: str | None = Field(default=None, max_length=500)
    enabled: StrictBool | None = Field(default=None, description="false stops deliveries; true resumes them")


class EndpointOut(BaseModel):
    id: str
    url: str
    description: str
    events: list[str]
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None = Field(description="`by_owner`, `gone` (answered 410) or `failing`")
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None = Field(description="Until then the old secret signs too")
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="`whsec_…`: shown once; verify our signatures with it.")


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_seconds: int = Field(
        default=86_400, ge=0, le=7 * 86_400, description="How long the old secret keeps signing too (0: stop now)"
    )


class AttemptOut(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int
    response_excerpt: str = Field(description="The first kilobyte of the answer")


class DeliveryOut(BaseModel):
    id: str
    event_id: str = Field(description="Sent as `webhook-id`")
    event_type: str
    status: str = Field(description="`pending`, `succeeded`, `failed` or `cancelled`")
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    finished_at: datetime | None
    log: list[AttemptOut]


class ReplaySinceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: AwareDatetime
    until: AwareDatetime | None = None


class ReplayOut(BaseModel):
    deliveries: int = Field(description="How many deliveries were queued")


def _out(endpoint: WebhookEndpoint) -> EndpointOut:
    return EndpointOut.model_validate(endpoint, from_attributes=True)


def _with_secret(issued: webhooks.IssuedEndpoint) -> EndpointWithSecret:
    return EndpointWithSecret(**_out(issued.endpoint).model_dump(), secret=issued.secret)


def _delivery_out(logged: delivery_log.LoggedDelivery) -> DeliveryOut:
    row = logged.delivery
    return DeliveryOut(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == DeliveryStatus.pending else None,
        created_at=row.created_at,
        finished_at=row.finished_at,
        log=[AttemptOut.model_validate(a, from_attributes=True) for a in logged.attempts],
    )


@router.post("/webhook-endpoints", status_code=201, summary="Add a webhook endpoint (its secret is shown once)")
def create_endpoint(
    body: EndpointIn, caller: WebhooksWrite, session: SessionDep, settings: SettingsDep
) -> EndpointWithSecret:
    issued = webhooks.create_endpoint(
        session,
        caller.tenant_id,
        body.url,
        body.events,
        description=body.description,
        policy=policy_from(settings),
        encryption_key=settings.encryption_key.get_secret_value(),
    )
    return _with_secret(issued)


@router.get("/webhook-endpoints", summary="The organization's webhook endpoints")
def list_endpoints(caller: WebhooksWrite, session: SessionDep, paging: Paging) -> Page[EndpointOut]:
    rows, more = webhooks.list_endpoints(session, caller.tenant_id, paging.after, paging.limit)
    return paging.page([_out(e) for e in rows], more, rows[-1].id if rows else None)


@router.get("/webhook-endpoints/{endpoint_id}", summary="One webhook endpoint")
def get_endpoint(endpoint_id: str, caller: WebhooksWrite, session: SessionDep) -> EndpointOut:
    return _out(webhooks.get_endpoint(session, caller.tenant_id, endpoint_id))


@router.patch("/webhook-endpoints/{endpoint_id}", summary="Change an endpoint, or disable or enable it")
def update_endpoint(
    endpoint_id: str, body: EndpointPatch, caller: WebhooksWrite, session: SessionDep, settings: SettingsDep
) -> EndpointOut:
    if body.enabled is False:
        deliveries.disable_endpoint(
            session, caller.tenant_id, endpoint_id, DisabledReason.by_owner, now=utcnow(), notify=False
        )
    changes = EndpointChanges(url=body.url, events=body.events, description=body.description, enabled=body.enabled)
    return _out(webhooks.update_endpoint(session, caller.tenant_id, endpoint_id, changes, policy=policy_from(settings)))


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=204, summary="Delete an endpoint and its log")
def delete_endpoint(endpoint_id: str, caller: WebhooksWrite, session: SessionDep) -> Response:
    webhooks.delete_endpoint(session, caller.tenant_id, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    summary="Issue a new secret; the old one keeps signing during the overlap",
)
def rotate_secret(
    endpoint_id: str, caller: WebhooksWrite, session: SessionDep, settings: SettingsDep, body: RotateIn | None = None
) -> EndpointWithSecret:
    issued = webhooks.rotate_secret(
        session,
        caller.tenant_id,
        endpoint_id,
        encryption_key=settings.encryption_key.get_secret_value(),
        overlap=timedelta(seconds=(body or RotateIn()).overlap_seconds),
    )
    return _with_secret(issued)


@router.get("/webhook-endpoints/{endpoint_id}/deliveries", summary="The endpoint's deliveries and every attempt")
def list_deliveries(
    endpoint_id: str,
    caller: WebhooksWrite,
    session: SessionDep,
    paging: Paging,
    status: Annotated[DeliveryStatus | None, Query(description="Only deliveries in this state")] = None,
) -> Page[DeliveryOut]:
    rows, more = delivery_log.list_deliveries(
        session, caller.tenant_id, endpoint_id, status=status, after=paging.after, limit=paging.limit
    )
    return paging.page([_delivery_out(r) for r in rows], more, rows[-1].delivery.id if rows else None)


@router.post("/webhook-endpoints/{endpoint_id}/replay", summary="Deliver again every event since a time")
def replay_since(endpoint_id: str, body: ReplaySinceIn, caller: WebhooksWrite, session: SessionDep) -> ReplayOut:
    count = delivery_log.replay_since(session, caller.tenant_id, endpoint_id, body.since, body.until, now=utcnow())
    return ReplayOut(deliveries=count)


@router.post("/events/{event_id}/replay", summary="Deliver one event again to every endpoint subscribed to it")
def replay_event(event_id: str, caller: WebhooksWrite, session: SessionDep) -> ReplayOut:
    return ReplayOut(deliveries=delivery_log.replay_event(session, caller.tenant_id, event_id, now=utcnow()))
