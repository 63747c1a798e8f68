"""Purchases: orders with lines (taxonomy category, unit price, quantity, format).

Recording an order also folds it into the customer's interest profile, in the same
transaction. An order id is unique per tenant; sending the same order again is a no-op,
sending a different order under the same id is a conflict.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKeyConstraint, Index, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col

from partners import interest_store, interests
from partners.customers import check_time, get_customer
from partners.db import UTCDateTime, keyset_page, owned, utcnow
from partners.errors import Conflict, Invalid
from partners.ids import new_id
from partners.taxonomy import load_taxonomy

MAX_LINES = 500
MAX_UNIT_PRICE_MINOR = 10**12
MAX_QUANTITY = 10_000
_ORDER_ID = re.compile(r"^[\x21-\x7e]{1,100}$")  # printable ASCII, no spaces
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class Channel(StrEnum):
    physical = "physical"
    download = "download"
    subscription = "subscription"


class Purchase(SQLModel, table=True):
    __tablename__ = "purchases"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "order_id", name="uq_purchases_order_id"),
        Index("ix_purchases_customer", "tenant_id", "customer_id", "ordered_at"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40)
    id: str = Field(default_factory=lambda: new_id("pur"), primary_key=True, max_length=40)
    customer_id: str = Field(max_length=40)
    order_id: str = Field(max_length=100)
    ordered_at: datetime = Field(sa_type=UTCDateTime)
    currency: str = Field(max_length=3)
    total_minor: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PurchaseLine(SQLModel, table=True):
    __tablename__ = "purchase_lines"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "purchase_id"], ["purchases.tenant_id", "purchases.id"], ondelete="CASCADE"),
    )

    tenant_id: str = Field(primary_key=True, max_length=40)
    purchase_id: str = Field(primary_key=True, max_length=40)
    line_no: int = Field(primary_key=True)
    category_id: str = Field(max_length=100)
    unit_price_minor: int = Field(sa_type=BigInteger)
    quantity: int
    channel: str = Field(max_length=20)


@dataclass(frozen=True)
class LineInput:
    category_id: str
    unit_price_minor: int
    quantity: int
    channel: Channel


@dataclass(frozen=True)
class PurchaseInput:
    order_id: str
    ordered_at: datetime
    currency: str
    lines: tuple[LineInput, ...]


@dataclass(frozen=True)
class RecordedPurchase:
    purchase: Purchase
    lines: Sequence[PurchaseLine]
    created: bool


def check_purchase(purchase: PurchaseInput, now: datetime) -> PurchaseInput:
    """Invalid, naming the field, for anything wrong with an order."""
    if not _ORDER_ID.match(purchase.order_id):
        raise Invalid("order_id must be 1–100 printable characters without spaces.", param="order_id")
    if not _CURRENCY.match(purchase.currency):
        raise Invalid("currency must be an ISO 4217 code such as EUR.", param="currency")
    ordered_at = check_time(purchase.ordered_at, now, "ordered_at")
    if not 1 <= len(purchase.lines) <= MAX_LINES:
        raise Invalid(f"An order has 1–{MAX_LINES} lines.", param="lines")
    taxonomy = load_taxonomy()
    for index, line in enumerate(purchase.lines):
        where = f"lines.{index}"
        if not taxonomy.exists(line.category_id):
            raise Invalid(f"Unknown category '{line.category_id}'.", param=f"{where}.category_id")
        if not 0 <= line.unit_price_minor <= MAX_UNIT_PRICE_MINOR:
            raise Invalid("unit_price_minor must be 0 or more, in minor units.", param=f"{where}.unit_price_minor")
        if not 1 <= line.quantity <= MAX_QUANTITY:
            raise Invalid(f"quantity must be 1–{MAX_QUANTITY}.", param=f"{where}.quantity")
        if line.channel not in set(Channel):
            raise Invalid("channel must be physical, download or subscription.", param=f"{where}.channel")
    return PurchaseInput(purchase.order_id, ordered_at, purchase.currency, purchase.lines)


def record_purchase(
    session: Session, tenant_id: str, external_id: str, purchase: PurchaseInput, *, now: datetime | None = None
) -> RecordedPurchase:
    """Store an order of a known customer and update its profile; the same order again is a no-op."""
    purchase = check_purchase(purchase, now or utcnow())
    customer = get_customer(session, tenant_id, external_id, for_update=True)
    existing = find_purchase(session, tenant_id, purchase.order_id)
    if existing is not None:
        return _replayed(session, existing, customer.id, purchase)
    row = Purchase(
        tenant_id=tenant_id,
        customer_id=customer.id,
        order_id=purchase.order_id,
        ordered_at=purchase.ordered_at,
        currency=purchase.currency,
        total_minor=sum(line.unit_price_minor * line.quantity for line in purchase.lines),
    )
    lines = [
        PurchaseLine(
            tenant_id=tenant_id,
            purchase_id=row.id,
            line_no=number,
            category_id=line.category_id,
            unit_price_minor=line.unit_price_minor,
            quantity=line.quantity,
            channel=str(line.channel),
        )
        for number, line in enumerate(purchase.lines, start=1)
    ]
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
            session.add_all(lines)
            session.flush()
    except IntegrityError as exc:
        # The same order id arrived concurrently for another customer.
        raise Conflict(f"Order '{purchase.order_id}' was recorded at the same time; retry.", param="order_id") from exc
    interest_store.record_order(session, tenant_id, customer.id, facts_of(row, lines))
    return RecordedPurchase(row, lines, True)


def _replayed(session: Session, existing: Purchase, customer_id: str, purchase: PurchaseInput) -> RecordedPurchase:
    lines = purchase_lines(session, existing)
    same = (
        existing.customer_id == customer_id
        and existing.ordered_at == purchase.ordered_at
        and existing.currency == purchase.currency
        and [(x.category_id, x.unit_price_minor, x.quantity, x.channel) for x in lines]
        == [(x.category_id, x.unit_price_minor, x.quantity, str(x.channel)) for x in purchase.lines]
    )
    if not same:
        raise Conflict(
            f"Order '{purchase.order_id}' was recorded already with other contents; order ids are unique.",
            param="order_id",
        )
    return RecordedPurchase(existing, lines, False)


def facts_of(purchase: Purchase, lines: Sequence[PurchaseLine]) -> interests.OrderFacts:
    """What the profile needs to know about a stored order."""
    return interests.OrderFacts(
        purchase.ordered_at,
        purchase.currency,
        tuple(interests.LineFacts(x.category_id, x.unit_price_minor, x.quantity, x.channel) for x in lines),
    )


def find_purchase(session: Session, tenant_id: str, order_id: str) -> Purchase | None:
    """The tenant's order with this id, or None."""
    return session.exec(owned(Purchase, tenant_id).where(col(Purchase.order_id) == order_id)).first()


def purchase_lines(session: Session, purchase: Purchase) -> Sequence[PurchaseLine]:
    """An order's lines, in order."""
    query = owned(PurchaseLine, purchase.tenant_id).where(col(PurchaseLine.purchase_id) == purchase.id)
    return session.exec(query.order_by(col(PurchaseLine.line_no))).all()


def list_purchases(
    session: Session, tenant_id: str, customer_id: str, after: str | None, limit: int
) -> tuple[Sequence[Purchase], bool]:
    """A customer's orders, a page at a time, in the order we received them."""
    query = owned(Purchase, tenant_id).where(col(Purchase.customer_id) == customer_id)
    return keyset_page(session, query, Purchase, after, limit)


def lines_of(session: Session, tenant_id: str, purchase_ids: Sequence[str]) -> dict[str, list[PurchaseLine]]:
    """The lines of several orders at once, by purchase id."""
    found: dict[str, list[PurchaseLine]] = {pid: [] for pid in purchase_ids}
    if purchase_ids:
        query = owned(PurchaseLine, tenant_id).where(col(PurchaseLine.purchase_id).in_(purchase_ids))
        for line in session.exec(query.order_by(col(PurchaseLine.purchase_id), col(PurchaseLine.line_no))):
            found[line.purchase_id].append(line)
    return found
