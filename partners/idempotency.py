"""Stored first answers to requests that carried an idempotency key, per tenant and caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, LargeBinary, delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col

from partners.db import UTCDateTime
from partners.errors import IdempotencyConflict, IdempotencyInProgress

# A claim not renewed for this long whose request never finished (the process died) may be
# taken over. A running request renews its claim every HEARTBEAT_EVERY (`api.idempotency`), so
# a long bulk upload is never taken for dead while it runs.
ABANDONED_AFTER = timedelta(minutes=5)
HEARTBEAT_EVERY = ABANDONED_AFTER / 5


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    caller_id: str = Field(primary_key=True, max_length=40)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    status_code: int | None = None
    content_type: str | None = Field(default=None, max_length=100)
    response_body: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = Field(sa_type=UTCDateTime)
    # When the running request last said it is alive (None: not since its claim).
    renewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Claim:
    tenant_id: str
    caller_id: str
    key: str


def claim(session: Session, claim: Claim, request_hash: str, *, now: datetime, ttl: timedelta) -> StoredResponse | None:
    """Reserve `claim` for this request, or return the answer already stored for it.

    Raises IdempotencyConflict when the key came with another request, and
    IdempotencyInProgress while the first request with it is still running.
    """
    ident = (claim.tenant_id, claim.caller_id, claim.key)
    existing = session.get(IdempotencyRecord, ident, with_for_update=True)
    if existing is not None and _reusable(existing, now):
        session.delete(existing)
        session.flush()
        existing = None
    if existing is not None:
        if existing.request_hash != request_hash:
            raise IdempotencyConflict(
                "This Idempotency-Key was used with a different request; use a new key for a new request.",
                param="Idempotency-Key",
            )
        if existing.status_code is None:
            raise IdempotencyInProgress(
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                param="Idempotency-Key",
            )
        return StoredResponse(existing.status_code, existing.content_type or "", existing.response_body or b"")
    record = IdempotencyRecord(
        tenant_id=claim.tenant_id,
        caller_id=claim.caller_id,
        key=claim.key,
        request_hash=request_hash,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(record)
    try:
        session.flush()
    except IntegrityError as exc:
        raise IdempotencyInProgress(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            param="Idempotency-Key",
        ) from exc
    return None


def _reusable(record: IdempotencyRecord, now: datetime) -> bool:
    expired = record.expires_at <= now
    alive_at = record.renewed_at or record.created_at
    abandoned = record.status_code is None and alive_at <= now - ABANDONED_AFTER
    return expired or abandoned


def complete(session: Session, claim: Claim, response: StoredResponse) -> None:
    """Store the first answer for a claimed key."""
    record = session.get(IdempotencyRecord, (claim.tenant_id, claim.caller_id, claim.key))
    if record is None:
        return
    record.status_code = response.status_code
    record.content_type = response.content_type
    record.response_body = response.body
    session.add(record)


def renew(session: Session, claim: Claim, now: datetime) -> None:
    """Say that the request holding `claim` is still running, so nobody takes it over."""
    session.exec(
        update(IdempotencyRecord)
        .where(
            col(IdempotencyRecord.tenant_id) == claim.tenant_id,
            col(IdempotencyRecord.caller_id) == claim.caller_id,
            col(IdempotencyRecord.key) == claim.key,
            col(IdempotencyRecord.status_code).is_(None),
        )
        .values(renewed_at=now)
    )


def release(session: Session, claim: Claim) -> None:
    """Forget a claim whose request failed, so that a retry runs it again."""
    session.exec(
        delete(IdempotencyRecord).where(
            col(IdempotencyRecord.tenant_id) == claim.tenant_id,
            col(IdempotencyRecord.caller_id) == claim.caller_id,
            col(IdempotencyRecord.key) == claim.key,
        )
    )


def purge_expired(session: Session, now: datetime) -> int:
    """Delete keys past their retention; returns how many went."""
    result = session.exec(delete(IdempotencyRecord).where(col(IdempotencyRecord.expires_at) <= now))
    return int(result.rowcount or 0)
