"""Bulk ingest of purchases (NDJSON or CSV), idempotent by order id, profiles updated per batch.

Each batch: the orders' customers are looked up and locked (as the single-purchase route
locks its one customer), orders stored already are compared with what was sent (same: a
no-op; different: a per-row conflict), new orders and their lines are written set-based
(`partners.bulk`), and every touched customer's interest profile is recomputed once
(`partners.interests_batch`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from partners import bulk, interests_batch
from partners.customers import Customer
from partners.db import utcnow
from partners.ids import new_id
from partners.ingest_jobs import IngestJob, JobKind, Lines, Progress, Upload, UploadFormat, run_upload
from partners.ingest_purchase_rows import CsvOrderReader, OrderRow, parse_csv_header, parse_ndjson_order
from partners.ingest_rows import RowError
from partners.interests import LineFacts, OrderFacts
from partners.purchases import Purchase, PurchaseLine

_CUSTOMERS = Customer.__table__  # type: ignore[attr-defined]
_PURCHASES = Purchase.__table__  # type: ignore[attr-defined]
_LINES = PurchaseLine.__table__  # type: ignore[attr-defined]

# What makes two orders under one id the same order.
_Contents = tuple[str, datetime, str, tuple[tuple[str, int, int, str], ...]]


@dataclass
class _Entry:
    order: OrderRow
    customer_id: str
    contents: _Contents
    new: bool = False  # the entry that inserts its order (the first of its id, not stored yet)
    error: RowError | None = None


async def ingest_purchases(
    engine: Engine, tenant_id: str, chunks: AsyncIterable[bytes], fmt: UploadFormat
) -> IngestJob:
    """Read an upload of purchases to its end; the finished job (status done, or failed)."""
    reader = CsvOrderReader()

    def write(
        session: Session, tenant_id: str, lines: Lines, header: list[str] | None, progress: Progress, final: bool
    ) -> Lines:
        now = utcnow()
        carried: Lines = []
        if header is None:
            records = [parse_ndjson_order(number, raw, now) for number, raw in lines]
        else:
            records, carried = reader.read(lines, header, now, final=final)
        progress.rows_seen += len(records)
        orders: list[OrderRow] = []
        for record in records:
            if isinstance(record, RowError):
                progress.fail(record)
            else:
                orders.append(record)
        store_orders(session, tenant_id, orders, progress)
        return carried

    return await run_upload(engine, tenant_id, Upload(JobKind.purchases, parse_csv_header, write), chunks, fmt)


def store_orders(session: Session, tenant_id: str, orders: Sequence[OrderRow], progress: Progress) -> None:
    """Store checked orders of one batch: per-row errors for unknown customers and conflicting ids."""
    customers = _lock_customers(session, tenant_id, sorted({order.external_id for order in orders}))
    entries: list[_Entry] = []
    for order in orders:
        customer_id = customers.get(order.external_id)
        if customer_id is None:
            message = f"No customer with external id '{order.external_id}'; register the customer first."
            progress.fail(RowError(order.line, "external_id", message))
        else:
            entries.append(_Entry(order, customer_id, _contents(order, customer_id)))
    reference = _stored_contents(session, tenant_id, sorted({e.order.purchase.order_id for e in entries}))
    fresh: set[str] = set()  # order ids first seen in this batch
    for entry in entries:
        order_id = entry.order.purchase.order_id
        known = reference.get(order_id)
        if known is None:
            reference[order_id] = entry.contents
            fresh.add(order_id)
            entry.new = True
        elif known != entry.contents:
            message = f"Order '{order_id}' was recorded already with other contents; order ids are unique."
            entry.error = RowError(entry.order.line, "order_id", message)
    inserted = _insert(session, tenant_id, [entry for entry in entries if entry.new])
    new_orders: dict[str, list[OrderFacts]] = defaultdict(list)
    for entry in entries:
        order_id = entry.order.purchase.order_id
        if entry.error is None and order_id in fresh and order_id not in inserted:
            # Another upload or request stored this order id between our check and our insert.
            message = f"Order '{order_id}' was recorded at the same time by another request; send it again."
            entry.error = RowError(entry.order.line, "order_id", message)
        if entry.error is not None:
            progress.fail(entry.error)
            continue
        progress.rows_ok += 1
        if entry.new:
            new_orders[entry.customer_id].append(_facts(entry.order))
    interests_batch.record_orders(session, tenant_id, new_orders)


def _lock_customers(session: Session, tenant_id: str, external_ids: Sequence[str]) -> dict[str, str]:
    """Our ids of the customers with these external ids, their rows locked (in id order, against deadlocks)."""
    if not external_ids:
        return {}
    query = (
        select(_CUSTOMERS.c.external_id, _CUSTOMERS.c.id)
        .where(_CUSTOMERS.c.tenant_id == tenant_id, bulk.one_of(session, _CUSTOMERS.c.external_id, external_ids))
        .order_by(_CUSTOMERS.c.id)
        .with_for_update()
    )
    return {str(row.external_id): str(row.id) for row in session.execute(query)}


def _contents(order: OrderRow, customer_id: str) -> _Contents:
    p = order.purchase
    lines = tuple((x.category_id, x.unit_price_minor, x.quantity, x.channel.value) for x in p.lines)
    return (customer_id, p.ordered_at, p.currency, lines)


def _stored_contents(session: Session, tenant_id: str, order_ids: Sequence[str]) -> dict[str, _Contents]:
    """What is stored under these order ids already, as comparable contents."""
    stored = bulk.fetch(session, _PURCHASES, tenant_id, "order_id", order_ids)
    if not stored:
        return {}
    lines: dict[str, list[Any]] = defaultdict(list)
    for line in sorted(bulk.fetch(session, _LINES, tenant_id, "purchase_id", [p.id for p in stored]), key=_line_no):
        lines[line.purchase_id].append((line.category_id, line.unit_price_minor, line.quantity, line.channel))
    return {p.order_id: (p.customer_id, p.ordered_at, p.currency, tuple(lines[p.id])) for p in stored}


def _line_no(line: Any) -> int:
    return int(line.line_no)


def _insert(session: Session, tenant_id: str, entries: Sequence[_Entry]) -> set[str]:
    """Insert new orders and their lines; the order ids inserted (a concurrent writer may have won some)."""
    now = utcnow()
    purchases: list[dict[str, Any]] = []
    by_id: dict[str, _Entry] = {}
    for entry in entries:
        p = entry.order.purchase
        purchase_id = new_id("pur")
        by_id[purchase_id] = entry
        purchases.append(
            {
                "tenant_id": tenant_id,
                "id": purchase_id,
                "customer_id": entry.customer_id,
                "order_id": p.order_id,
                "ordered_at": p.ordered_at,
                "currency": p.currency,
                "total_minor": sum(x.unit_price_minor * x.quantity for x in p.lines),
                "created_at": now,
            }
        )
    inserted = bulk.insert_new(session, _PURCHASES, purchases, ["tenant_id", "order_id"], "id")
    lines = [
        {
            "tenant_id": tenant_id,
            "purchase_id": purchase_id,
            "line_no": number,
            "category_id": x.category_id,
            "unit_price_minor": x.unit_price_minor,
            "quantity": x.quantity,
            "channel": x.channel.value,
        }
        for purchase_id in inserted
        for number, x in enumerate(by_id[purchase_id].order.purchase.lines, start=1)
    ]
    bulk.insert(session, _LINES, lines)
    return {by_id[purchase_id].order.purchase.order_id for purchase_id in inserted}


def _facts(order: OrderRow) -> OrderFacts:
    p = order.purchase
    lines = tuple(LineFacts(x.category_id, x.unit_price_minor, x.quantity, x.channel.value) for x in p.lines)
    return OrderFacts(p.ordered_at, p.currency, lines)
