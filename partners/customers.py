"""A tenant's customers, pseudonymous: its own external id, and an email kept only as a keyed hash.

The raw address is held only when the tenant asks to keep it for its own use, and then
encrypted. Erased customers leave a keyed-hash suppression entry behind (see
`partners.privacy`), and registering one of them again is refused.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Index, Text, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col

from partners.crypto import decrypt, encrypt
from partners.db import UTCDateTime, get_owned, owned, utcnow
from partners.errors import Conflict, Invalid, NotFound
from partners.identity import keyed_email_hash, normalize_email
from partners.ids import new_id

# How far ahead of our clock a tenant's timestamp may be before we call it a mistake.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# Earlier than this is a missing or mis-converted timestamp (epoch zero), not a real event.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)

_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_SUPPRESSION_CONTEXT = b"partnerloop/suppression/v1\x00"


class SuppressionKind(StrEnum):
    external_id = "external_id"
    email = "email"


class CustomerSuppressed(Conflict):
    code = "customer_suppressed"
    title = "Customer erased"


class Customer(SQLModel, table=True):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id", name="uq_customers_external_id"),
        Index("ix_customers_email_hash", "tenant_id", "email_hash"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(default_factory=lambda: new_id("cus"), primary_key=True, max_length=40)
    external_id: str = Field(max_length=128)
    # HMAC-SHA256 (base64url) of the normalized email under the platform key.
    email_hash: str | None = Field(default=None, max_length=64)
    # Only when the tenant chose to keep the address for its own use; Fernet-encrypted.
    email_encrypted: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Suppression(SQLModel, table=True):
    """What is left of an erased customer: keyed hashes that stop a re-import."""

    __tablename__ = "customer_suppressions"

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    kind: str = Field(primary_key=True, max_length=20)
    value_hash: str = Field(primary_key=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def check_external_id(external_id: str) -> str:
    """The tenant's id for a customer: 1–128 of `A-Za-z0-9._:-` (so never an email address)."""
    if not _EXTERNAL_ID.match(external_id):
        raise Invalid(
            "external_id must be 1–128 characters of letters, digits and . _ : - "
            "(use your own customer number, never an email address).",
            param="external_id",
        )
    return external_id


def check_time(at: datetime, now: datetime, param: str) -> datetime:
    """A tenant-supplied event time: aware, not before 2000, not ahead of our clock beyond skew."""
    if at.tzinfo is None:
        raise Invalid("Give times with a UTC offset.", param=param)
    if at > now + MAX_CLOCK_SKEW:
        raise Invalid(
            f"{param} lies in the future ({at.isoformat()}); check the sender's clock.",
            param=param,
        )
    if at < EARLIEST:
        raise Invalid(f"{param} is before {EARLIEST.year}; is the timestamp missing?", param=param)
    return at.astimezone(UTC)


def suppression_hash(key: bytes, tenant_id: str, kind: SuppressionKind, value: str) -> str:
    """A keyed hash of an erased customer's identifier, bound to the tenant and the kind."""
    message = _SUPPRESSION_CONTEXT + f"{tenant_id}\x00{kind.value}\x00{value}".encode()
    return hmac.digest(key, message, "sha256").hex()


def is_suppressed(session: Session, tenant_id: str, key: bytes, kind: SuppressionKind, value: str) -> bool:
    """Whether an erased customer had this external id or email hash."""
    ident = (tenant_id, kind.value, suppression_hash(key, tenant_id, kind, value))
    return session.get(Suppression, ident) is not None


def suppress(session: Session, tenant_id: str, key: bytes, kind: SuppressionKind, value: str) -> None:
    """Remember an erased customer's identifier as a keyed hash (idempotent)."""
    value_hash = suppression_hash(key, tenant_id, kind, value)
    if session.get(Suppression, (tenant_id, kind.value, value_hash)) is None:
        session.add(Suppression(tenant_id=tenant_id, kind=kind.value, value_hash=value_hash))
        session.flush()


def _refuse_suppressed(session: Session, tenant_id: str, key: bytes, kind: SuppressionKind, value: str) -> None:
    if is_suppressed(session, tenant_id, key, kind, value):
        param = "external_id" if kind == SuppressionKind.external_id else "email"
        raise CustomerSuppressed(
            f"This customer asked to be erased; the {param.replace('_', ' ')} is on the suppression list "
            "and is not registered again.",
            param=param,
        )


@dataclass(frozen=True)
class EmailFields:
    email_hash: str | None
    email_encrypted: str | None


def email_fields(email: str | None, store_email: bool, hash_key: bytes, encryption_key: str) -> EmailFields:
    """The stored form of an email: its keyed hash, and the encrypted address only if asked for."""
    if email is None:
        if store_email:
            raise Invalid("store_email needs an email.", param="store_email")
        return EmailFields(None, None)
    email_hash = keyed_email_hash(hash_key, normalize_email(email))
    return EmailFields(email_hash, encrypt(encryption_key, email.strip()) if store_email else None)


@dataclass(frozen=True)
class Upserted:
    customer: Customer
    created: bool


def upsert_customer(
    session: Session,
    tenant_id: str,
    external_id: str,
    *,
    email: str | None,
    store_email: bool,
    hash_key: bytes,
    encryption_key: str,
) -> Upserted:
    """Create the customer or replace what we hold about it; refused for erased customers."""
    check_external_id(external_id)
    fields = email_fields(email, store_email, hash_key, encryption_key)
    if fields.email_hash is not None:
        _refuse_suppressed(session, tenant_id, hash_key, SuppressionKind.email, fields.email_hash)
    customer = find_customer(session, tenant_id, external_id, for_update=True)
    if customer is None:
        _refuse_suppressed(session, tenant_id, hash_key, SuppressionKind.external_id, external_id)
        created = _insert(session, tenant_id, external_id, fields)
        if created is not None:
            return Upserted(created, True)
        # A concurrent request registered it first: update that row instead.
        customer = get_customer(session, tenant_id, external_id, for_update=True)
    if (customer.email_hash, customer.email_encrypted) != (fields.email_hash, fields.email_encrypted):
        customer.email_hash = fields.email_hash
        customer.email_encrypted = fields.email_encrypted
        customer.updated_at = utcnow()
        session.add(customer)
        session.flush()
    return Upserted(customer, False)


def _insert(session: Session, tenant_id: str, external_id: str, fields: EmailFields) -> Customer | None:
    customer = Customer(
        tenant_id=tenant_id,
        external_id=external_id,
        email_hash=fields.email_hash,
        email_encrypted=fields.email_encrypted,
    )
    try:
        with session.begin_nested():
            session.add(customer)
            session.flush()
    except IntegrityError:
        return None
    return customer


def find_customer(session: Session, tenant_id: str, external_id: str, *, for_update: bool = False) -> Customer | None:
    """The tenant's customer with this external id, or None."""
    query = owned(Customer, tenant_id).where(col(Customer.external_id) == external_id)
    if for_update:
        query = query.with_for_update()
    return session.exec(query).first()


def get_customer(session: Session, tenant_id: str, external_id: str, *, for_update: bool = False) -> Customer:
    """The tenant's customer with this external id; NotFound naming `external_id` otherwise.

    `for_update` locks the row: writes about one customer (consent, purchases) take turns.
    """
    customer = find_customer(session, tenant_id, external_id, for_update=for_update)
    if customer is None:
        raise NotFound(
            f"No customer with external id '{external_id}'; register the customer before sending its events.",
            param="external_id",
        )
    return customer


def get_customer_by_id(session: Session, tenant_id: str, customer_id: str) -> Customer:
    """The tenant's customer with our id (`cus_…`)."""
    return get_owned(session, Customer, tenant_id, customer_id)


def stored_email(customer: Customer, encryption_key: str) -> str | None:
    """The address the tenant asked us to keep, decrypted; None if it did not."""
    return decrypt(encryption_key, customer.email_encrypted) if customer.email_encrypted else None
