"""Which partners received anything about a customer: they are told when consent is withdrawn
or the customer is erased. The exchange and contact sharing record here when they disclose."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, Insert, Table, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col

from partners.db import UTCDateTime, Write, multirow_params, multirow_upsert, owned, utcnow


class Disclosure(SQLModel, table=True):
    __tablename__ = "customer_disclosures"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"], ondelete="CASCADE"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40)
    customer_id: str = Field(primary_key=True, max_length=40)
    partner_tenant_id: str = Field(primary_key=True, max_length=40)
    first_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def record_disclosure(
    session: Session, tenant_id: str, customer_id: str, partner_tenant_id: str, at: datetime | None = None
) -> Disclosure:
    """Note that this partner received something about the customer (idempotent)."""
    at = at or utcnow()
    ident = (tenant_id, customer_id, partner_tenant_id)
    row = session.get(Disclosure, ident)
    if row is None:
        row = Disclosure(
            tenant_id=tenant_id, customer_id=customer_id, partner_tenant_id=partner_tenant_id, first_at=at, last_at=at
        )
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
            return row
        except IntegrityError:
            row = session.get(Disclosure, ident, populate_existing=True)
            if row is None:
                raise
    row.last_at = max(row.last_at, at)
    session.add(row)
    session.flush()
    return row


def record_disclosures(
    session: Session, tenant_id: str, customer_id: str, partner_tenant_ids: Sequence[str], at: datetime
) -> None:
    """`record_disclosure` for several partners in one statement (an upsert)."""
    dialect = session.get_bind().dialect.name
    statement, params = disclosures_write(dialect, tenant_id, customer_id, partner_tenant_ids, at)
    session.execute(statement, params)


_COLUMNS = ("tenant_id", "customer_id", "partner_tenant_id", "first_at", "last_at")


def disclosures_write(
    dialect: str, tenant_id: str, customer_id: str, partner_tenant_ids: Sequence[str], at: datetime
) -> Write:
    """The upsert `record_disclosures` runs, for a caller that writes more in the same round trip."""
    rows = [
        {"tenant_id": tenant_id, "customer_id": customer_id, "partner_tenant_id": p, "first_at": at, "last_at": at}
        # Sorted and unique: one row per partner, taken in the same order by every transaction.
        for p in sorted(set(partner_tenant_ids))
    ]
    statement = _upsert(dialect, len(rows))
    return statement, multirow_params(_COLUMNS, rows, "d")


@functools.cache
def _upsert(dialect: str, count: int) -> Insert:
    table: Table = Disclosure.__table__  # type: ignore[attr-defined]
    latest = func.greatest if dialect == "postgresql" else func.max
    statement = multirow_upsert(table, _COLUMNS, count, "d", dialect)
    return statement.on_conflict_do_update(
        index_elements=[table.c.tenant_id, table.c.customer_id, table.c.partner_tenant_id],
        set_={"last_at": latest(table.c.last_at, statement.excluded.last_at)},
    )


def disclosures_of(session: Session, tenant_id: str, customer_id: str) -> Sequence[Disclosure]:
    """Every partner that received something about the customer."""
    query = owned(Disclosure, tenant_id).where(col(Disclosure.customer_id) == customer_id)
    return session.exec(query.order_by(col(Disclosure.partner_tenant_id))).all()


def recipients(session: Session, tenant_id: str, customer_id: str) -> list[str]:
    """The partner tenant ids that received something about the customer."""
    return [row.partner_tenant_id for row in disclosures_of(session, tenant_id, customer_id)]
