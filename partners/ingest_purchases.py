"""Bulk ingest of purchases (NDJSON or CSV), idempotent by order id, profiles updated per batch.

Each batch: the orders' customers are looked up and locked (as the single-purchase route
locks its one customer), the orders and their lines are written set-based (`partners.bulk`:
COPY into staging, `INSERT … ON CONFLICT DO NOTHING`), orders whose id was stored already are
then compared with what was sent (same: a no-op; different: a per-row conflict), and every
touched customer's interest profile is recomputed once (`partners.interests_batch`). Rows
travel as tuples, not ORM objects or dicts: at a million rows the per-row Python work is
what bounds the rate (docs/performance.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from partners import bulk, interests_batch
from partners.customers import Customer
from partners.db import utcnow
from partners.ids import new_ids
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

_PURCHASE_COLUMNS = (
    "tenant_id",
    "id",
    "customer_id",
    "order_id",
    "ordered_at",
    "currency",
    "total_minor",
    "created_at",
)
_LINE_COLUMNS = ("tenant_id", "purchase_id", "line_no", "category_id", "unit_price_minor", "quantity", "channel")


async def ingest_purchases(
    engine: Engine, tenant_id: str, chunks: AsyncIterable[bytes], fmt: UploadFormat
) -> IngestJob:
    """Read an upload of purchases to its end; the finished job (status done, or failed)."""
    reader = CsvOrderReader()

    def read(lines: Lines, header: list[str] | None, final: bool) -> tuple[list[OrderRow | RowError], Lines]:
        now = utcnow()
        if header is None:
            return [parse_ndjson_order(number, raw, now) for number, raw in lines], []
        return reader.read(lines, header, now, final=final)

    def write(
        session: Session,
        tenant_id: str,
        records: list[OrderRow | RowError],
        header: list[str] | None,
        progress: Progress,
        final: bool,
    ) -> Lines:
        progress.rows_seen += len(records)
        orders: list[OrderRow] = []
        for record in records:
            if isinstance(record, RowError):
                progress.fail(record)
            else:
                orders.append(record)
        store_orders(session, tenant_id, orders, progress)
        return []

    upload = Upload(JobKind.purchases, parse_csv_header, write, read=read)  # type: ignore[arg-type]
    return await run_upload(engine, tenant_id, upload, chunks, fmt)


def store_orders(session: Session, tenant_id: str, orders: Sequence[OrderRow], progress: Progress) -> None:
    """Store checked orders of one batch: per-row errors for unknown customers and conflicting ids."""
    customers = _lock_customers(session, tenant_id, sorted({order.external_id for order in orders}))
    firsts: dict[str, tuple[OrderRow, str]] = {}  # the first order of each id in the batch, and its customer
    repeats: list[tuple[OrderRow, str]] = []  # later orders under an id seen earlier in the batch
    for order in orders:
        customer_id = customers.get(order.external_id)
        if customer_id is None:
            message = f"No customer with external id '{order.external_id}'; register the customer first."
            progress.fail(RowError(order.line, "external_id", message))
        elif order.purchase.order_id in firsts:
            repeats.append((order, customer_id))
        else:
            firsts[order.purchase.order_id] = (order, customer_id)
    # Insert first, compare after: an id already stored (or stored meanwhile by another
    # writer, whom the insert waits for) is skipped by the insert and compared below.
    inserted = _insert(session, tenant_id, list(firsts.values()))
    reference = _stored_contents(session, tenant_id, [order_id for order_id in firsts if order_id not in inserted])
    new_orders: dict[str, list[OrderFacts]] = defaultdict(list)
    for order_id, (order, customer_id) in firsts.items():
        if order_id in inserted:
            progress.rows_ok += 1
            new_orders[customer_id].append(_facts(order))
        else:
            _compare(order, customer_id, reference.get(order_id), progress)
    for order, customer_id in repeats:
        order_id = order.purchase.order_id
        known = reference.get(order_id)
        if known is None and order_id in inserted:
            known = reference[order_id] = _contents(*firsts[order_id])
        _compare(order, customer_id, known, progress)
    interests_batch.record_orders(session, tenant_id, new_orders)


def _compare(order: OrderRow, customer_id: str, known: _Contents | None, progress: Progress) -> None:
    """Count an order sent again: kept if it is the stored order, a per-row conflict if not."""
    order_id = order.purchase.order_id
    if known is None:
        # The order id was taken when we inserted, and is gone now (its customer was erased).
        message = f"Order '{order_id}' was recorded at the same time by another request; send it again."
        progress.fail(RowError(order.line, "order_id", message))
    elif known != _contents(order, customer_id):
        message = f"Order '{order_id}' was recorded already with other contents; order ids are unique."
        progress.fail(RowError(order.line, "order_id", message))
    else:
        progress.rows_ok += 1


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


def _insert(session: Session, tenant_id: str, orders: Sequence[tuple[OrderRow, str]]) -> set[str]:
    """Insert new orders and their lines; the order ids inserted (those stored already are skipped)."""
    if not orders:
        return set()
    now = utcnow()
    ids = new_ids("pur", len(orders))
    purchases = [
        (
            tenant_id,
            purchase_id,
            customer_id,
            order.purchase.order_id,
            order.purchase.ordered_at,
            order.purchase.currency,
            sum(x.unit_price_minor * x.quantity for x in order.purchase.lines),
            now,
        )
        for purchase_id, (order, customer_id) in zip(ids, orders, strict=True)
    ]
    inserted = bulk.insert_new(session, _PURCHASES, _PURCHASE_COLUMNS, purchases, ["tenant_id", "order_id"], "id")
    by_id = dict(zip(ids, orders, strict=True))
    lines = [
        (tenant_id, purchase_id, number, x.category_id, x.unit_price_minor, x.quantity, x.channel.value)
        for purchase_id in inserted
        for number, x in enumerate(by_id[purchase_id][0].purchase.lines, start=1)
    ]
    bulk.insert_values(session, _LINES, _LINE_COLUMNS, lines)
    return {by_id[purchase_id][0].purchase.order_id for purchase_id in inserted}


def _facts(order: OrderRow) -> OrderFacts:
    p = order.purchase
    lines = tuple(LineFacts(x.category_id, x.unit_price_minor, x.quantity, x.channel.value) for x in p.lines)
    return OrderFacts(p.ordered_at, p.currency, lines)
