"""Webhook endpoints of a tenant: URL, subscribed events, and the `whsec_` secret that signs.

We must sign every message with the endpoint's secret, so secrets cannot be stored as hashes: they
are encrypted at rest with `partners.crypto.encrypt` (key: `PARTNERLOOP_ENCRYPTION_KEY`) and shown
to the tenant once, when created or rotated. After a rotation the previous secret keeps signing
alongside the new one until `previous_secret_expires_at`, so a partner can switch without a gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, Session, SQLModel, col

from partners import webhook_events
from partners.crypto import decrypt, encrypt
from partners.db import UTCDateTime, get_owned, keyset_page, owned, utcnow
from partners.egress import EgressPolicy, EgressRefused, check_url
from partners.errors import Invalid
from partners.ids import new_id
from partners.webhook_signing import new_signing_secret

MAX_URL_LENGTH = 2000
MAX_SECRET_OVERLAP = timedelta(days=7)
DEFAULT_SECRET_OVERLAP = timedelta(hours=24)


class DisabledReason(StrEnum):
    by_owner = "by_owner"
    gone = "gone"  # the endpoint answered 410 Gone
    failing = "failing"  # every attempt failed for days


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(default_factory=lambda: new_id("whe"), primary_key=True, max_length=40)
    url: str = Field(max_length=MAX_URL_LENGTH)
    description: str = Field(default="", max_length=500)
    events: list[str] = Field(default_factory=list, sa_type=JSON)
    secret_encrypted: str = Field(max_length=1000)
    previous_secret_encrypted: str | None = Field(default=None, max_length=1000)
    previous_secret_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    enabled: bool = True
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disabled_reason: str | None = Field(default=None, max_length=20)
    # Set by the first failed attempt after a success; cleared by the next success.
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


@dataclass(frozen=True)
class IssuedEndpoint:
    """An endpoint with its new secret in clear: shown to the tenant once."""

    endpoint: WebhookEndpoint
    secret: str


@dataclass(frozen=True)
class EndpointChanges:
    """Fields to change; None leaves one as it is."""

    url: str | None = None
    events: Sequence[str] | None = None
    description: str | None = None
    enabled: bool | None = None


def checked_url(url: str, policy: EgressPolicy) -> str:
    """The URL if we may ever call it; Invalid (param `url`) otherwise."""
    if len(url) > MAX_URL_LENGTH:
        raise Invalid(f"The URL is longer than {MAX_URL_LENGTH} characters.", param="url")
    try:
        return check_url(url, policy)
    except EgressRefused as exc:
        raise Invalid(f"This URL cannot receive webhooks: {exc}.", param="url") from exc


def create_endpoint(
    session: Session,
    tenant_id: str,
    url: str,
    events: Sequence[str],
    *,
    description: str = "",
    policy: EgressPolicy,
    encryption_key: str,
) -> IssuedEndpoint:
    """A new enabled endpoint and its first secret."""
    secret = new_signing_secret()
    endpoint = WebhookEndpoint(
        tenant_id=tenant_id,
        url=checked_url(url, policy),
        description=description,
        events=webhook_events.normalize_subscriptions(events),
        secret_encrypted=encrypt(encryption_key, secret),
    )
    session.add(endpoint)
    session.flush()
    return IssuedEndpoint(endpoint, secret)


def get_endpoint(session: Session, tenant_id: str, endpoint_id: str, *, for_update: bool = False) -> WebhookEndpoint:
    """The tenant's endpoint; NotFound for another tenant's as for a missing one."""
    if not for_update:
        return get_owned(session, WebhookEndpoint, tenant_id, endpoint_id)
    query = owned(WebhookEndpoint, tenant_id).where(col(WebhookEndpoint.id) == endpoint_id)
    found = session.exec(query.with_for_update().execution_options(populate_existing=True)).first()
    return found if found is not None else get_owned(session, WebhookEndpoint, tenant_id, endpoint_id)


def list_endpoints(
    session: Session, tenant_id: str, after: str | None, limit: int
) -> tuple[Sequence[WebhookEndpoint], bool]:
    """One page of the tenant's endpoints, in creation order."""
    return keyset_page(session, owned(WebhookEndpoint, tenant_id), WebhookEndpoint, after, limit)


def subscribed(session: Session, tenant_id: str, event_type: str) -> list[WebhookEndpoint]:
    """The tenant's enabled endpoints that subscribe to `event_type`."""
    query = owned(WebhookEndpoint, tenant_id).where(col(WebhookEndpoint.enabled).is_(True))
    rows = session.exec(query.order_by(col(WebhookEndpoint.id))).all()
    return [row for row in rows if webhook_events.matches(row.events, event_type)]


def update_endpoint(
    session: Session, tenant_id: str, endpoint_id: str, changes: EndpointChanges, *, policy: EgressPolicy
) -> WebhookEndpoint:
    """Change URL, subscriptions, description, or enable again (disabling goes through deliveries)."""
    endpoint = get_endpoint(session, tenant_id, endpoint_id, for_update=True)
    values: dict[str, Any] = {}
    if changes.url is not None:
        values["url"] = checked_url(changes.url, policy)
    if changes.events is not None:
        values["events"] = webhook_events.normalize_subscriptions(changes.events)
    if changes.description is not None:
        values["description"] = changes.description
    if changes.enabled and not endpoint.enabled:
        values.update(enabled=True, disabled_at=None, disabled_reason=None, failing_since=None)
    for name, value in values.items():
        setattr(endpoint, name, value)
    if values:
        endpoint.updated_at = utcnow()
        session.add(endpoint)
        session.flush()
    return endpoint


def rotate_secret(
    session: Session,
    tenant_id: str,
    endpoint_id: str,
    *,
    encryption_key: str,
    overlap: timedelta = DEFAULT_SECRET_OVERLAP,
    now: datetime | None = None,
) -> IssuedEndpoint:
    """A new secret; the one it replaces keeps signing too for `overlap` (zero: it stops at once)."""
    if not timedelta(0) <= overlap <= MAX_SECRET_OVERLAP:
        raise Invalid("The overlap is between 0 seconds and 7 days.", param="overlap_seconds")
    now = now or utcnow()
    endpoint = get_endpoint(session, tenant_id, endpoint_id, for_update=True)
    secret = new_signing_secret()
    keep_old = overlap > timedelta(0)
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted if keep_old else None
    endpoint.previous_secret_expires_at = now + overlap if keep_old else None
    endpoint.secret_encrypted = encrypt(encryption_key, secret)
    endpoint.updated_at = now
    session.add(endpoint)
    session.flush()
    return IssuedEndpoint(endpoint, secret)


def signing_secrets(endpoint: WebhookEndpoint, encryption_key: str, now: datetime) -> tuple[str, ...]:
    """The secrets that sign a message sent now: the current one, then the previous while it overlaps."""
    current = decrypt(encryption_key, endpoint.secret_encrypted)
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_encrypted is None or expires is None or expires <= now:
        return (current,)
    return current, decrypt(encryption_key, endpoint.previous_secret_encrypted)


def delete_endpoint(session: Session, tenant_id: str, endpoint_id: str) -> None:
    """Delete an endpoint with its deliveries and their log."""
    endpoint = get_endpoint(session, tenant_id, endpoint_id, for_update=True)
    session.delete(endpoint)
    session.flush()
