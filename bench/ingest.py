"""Bulk ingest throughput of customers and their purchases beside a plain COPY of the same rows.

    .venv/bin/python bench/ingest.py --rows 1000000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/bench_ingest

Run by hand, not in tests. The database named (it must start with "bench") is dropped and
created afresh. The script calls `partners.ingest_customers.ingest_customers` and then
`partners.ingest_purchases.ingest_purchases` directly (the path the upload routes take,
minus HTTP): N customers, then N orders (one per customer, 1–2 lines each, so interest
profiles are built too). Then it COPYs the same rows (customers: external id and email;
orders: one row each, lines as JSON) into scratch tables on the same server, and prints
rows/s for each. With --url and --token it uploads over HTTP instead of calling directly.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from sqlalchemy import Engine, make_url, text

from partners.db import make_engine, unit_of_work
from partners.ingest_customers import Keys, ingest_customers
from partners.ingest_jobs import IngestJob, UploadFormat
from partners.ingest_purchases import ingest_purchases
from partners.migrate import upgrade
from partners.retailers import Tenant
from partners.taxonomy import load_taxonomy

CHUNK = 1 << 20
START = datetime(2024, 1, 1, tzinfo=UTC)


def customer_rows(rows: int) -> list[dict[str, Any]]:
    return [{"external_id": f"c-{i}", "email": f"user{i}@example.com"} for i in range(rows)]


def order_rows(rows: int) -> list[dict[str, Any]]:
    tree = load_taxonomy()
    leaves = [c.id for c in tree if tree.is_leaf(c.id)]
    orders = []
    for i in range(rows):
        lines = [
            {
                "category_id": leaves[(i * 7 + n * 13) % len(leaves)],
                "unit_price_minor": 500 + (i * 37 + n * 101) % 20_000,
                "quantity": 1 + (i + n) % 3,
                "channel": ("physical", "download", "subscription")[(i + n) % 3],
            }
            for n in range(1 + i % 2)
        ]
        ordered_at = START + timedelta(minutes=(i * 7919) % 1_000_000)
        orders.append(
            {"external_id": f"c-{i}", "order_id": f"o-{i}", "ordered_at": ordered_at.isoformat(), "currency": "EUR"}
            | {"lines": lines}
        )
    return orders


def ndjson(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(row, separators=(",", ":")).encode() + b"\n" for row in rows)


def fresh_database(url: str) -> None:
    parsed = make_url(url)
    if not (parsed.database or "").startswith("bench"):
        raise SystemExit("bench/ingest.py drops its database: name one starting with 'bench'.")
    admin = make_engine(
        parsed.set(database="postgres").render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}"'))
        connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


async def chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), CHUNK):
        yield body[start : start + CHUNK]


def timed(label: str, rows: int, run: Callable[[], IngestJob]) -> float:
    started, cpu, load = time.perf_counter(), time.process_time(), os.getloadavg()[0]
    job = run()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert (job.rows_ok, job.rows_failed) == (rows, 0), (job.rows_ok, job.rows_failed, job.errors[:3])
    # Our process's CPU per row varies less with the machine's load than the wall-clock rate.
    print(
        f"  {label}: {rows:,} rows in {elapsed:,.1f} s, {cpu / rows * 1e6:,.0f} µs of our CPU a row, "
        f"load {load:.1f} → {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    return rows / elapsed


def bench_direct(engine: Engine, customers: bytes, orders: bytes, rows: int) -> tuple[float, float]:
    with unit_of_work(engine) as session:
        tenant = Tenant(name="bench")
        session.add(tenant)
    keys = Keys(secrets.token_bytes(32), "")

    def people() -> IngestJob:
        return anyio.run(ingest_customers, engine, tenant.id, chunks(customers), UploadFormat.ndjson, keys)

    def purchases() -> IngestJob:
        return anyio.run(ingest_purchases, engine, tenant.id, chunks(orders), UploadFormat.ndjson)

    return timed("ingest customers", rows, people), timed("ingest purchases", rows, purchases)


def bench_http(base_url: str, token: str, customers: bytes, orders: bytes, rows: int) -> tuple[float, float]:
    import httpx

    def post(kind: str, body: bytes) -> float:
        started = time.perf_counter()
        response = httpx.post(
            base_url.rstrip("/") + f"/v1/uploads/{kind}",
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
            timeout=None,
        )
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        assert response.json()["rows_ok"] == rows, response.text[:500]
        return rows / elapsed

    return post("customers", customers), post("purchases", orders)


def bench_copy(engine: Engine, people: list[dict[str, Any]], orders: list[dict[str, Any]]) -> tuple[float, float]:
    """COPY the same rows, as tuples, into scratch tables: the server's and driver's ceiling."""
    rates = []
    with engine.begin() as connection:
        driver: Any = connection.connection.driver_connection
        with driver.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS scratch_customers (external_id text, email text)")
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS scratch_orders "
                "(external_id text, order_id text, ordered_at timestamptz, currency text, lines jsonb)"
            )
    for table, columns, values in (
        ("scratch_customers", "external_id, email", [(r["external_id"], r["email"]) for r in people]),
        (
            "scratch_orders",
            "external_id, order_id, ordered_at, currency, lines",
            [(r["external_id"], r["order_id"], r["ordered_at"], r["currency"], json.dumps(r["lines"])) for r in orders],
        ),
    ):
        with engine.begin() as connection:
            driver = connection.connection.driver_connection
            with driver.cursor() as cursor:
                started = time.perf_counter()
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for value in values:
                        copy.write_row(value)
        rates.append(len(values) / (time.perf_counter() - started))
        print(f"  COPY {table}: {len(values):,} rows", flush=True)
    return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="customers, and as many orders")
    parser.add_argument("--database-url", required=True, help="PostgreSQL; dropped and created afresh")
    parser.add_argument("--url", help="upload over HTTP to this running server (on that database) instead")
    parser.add_argument("--token", help="access token with customers:write (with --url)")
    args = parser.parse_args()
    people, orders = customer_rows(args.rows), order_rows(args.rows)
    customers_body, orders_body = ndjson(people), ndjson(orders)
    print(f"rows: {args.rows:,} customers ({len(customers_body) / 1e6:,.0f} MB NDJSON)", end="")
    print(f" and {args.rows:,} orders ({len(orders_body) / 1e6:,.0f} MB); load {os.getloadavg()[0]:.1f}")
    if args.url:
        ingest = bench_http(args.url, args.token, customers_body, orders_body, args.rows)
        engine = make_engine(args.database_url)
    else:
        fresh_database(args.database_url)
        upgrade(args.database_url)
        engine = make_engine(args.database_url)
        ingest = bench_direct(engine, customers_body, orders_body, args.rows)
    copy = bench_copy(engine, people, orders)
    engine.dispose()
    print(f"{'':12}{'ingest rows/s':>16}{'COPY rows/s':>16}{'ratio':>8}")
    for label, ours, plain in (("customers", ingest[0], copy[0]), ("purchases", ingest[1], copy[1])):
        print(f"{label:12}{ours:>16,.0f}{plain:>16,.0f}{ours / plain:>8.2f}")
    both = 2 / (1 / ingest[0] + 1 / ingest[1]), 2 / (1 / copy[0] + 1 / copy[1])
    print(f"{'both':12}{both[0]:>16,.0f}{both[1]:>16,.0f}{both[0] / both[1]:>8.2f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
