"""Bulk ingest throughput beside a plain COPY of the same rows (run by hand, not in tests).

    .venv/bin/python bench/ingest.py --rows 200000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/bench_ingest

Calls `partners.ingest.ingest_customers` directly (the path the upload route takes, minus
HTTP), then COPYs the same external ids and emails into a scratch table on the same
server, and prints rows/s for both. With --url and --token it uploads over HTTP instead.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from collections.abc import AsyncIterator

import anyio
from sqlalchemy import make_url, text

from partners import ingest
from partners.db import make_engine, unit_of_work
from partners.migrate import upgrade
from partners.retailers import Tenant

CHUNK = 1 << 20


def generate(rows: int) -> bytes:
    return b"".join(
        json.dumps({"external_id": f"c-{i}", "email": f"user{i}@example.com"}).encode() + b"\n" for i in range(rows)
    )


def ensure_database(url: str) -> None:
    parsed = make_url(url)
    admin = make_engine(
        parsed.set(database="postgres").render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
        ).first()
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


async def chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), CHUNK):
        yield body[start : start + CHUNK]


def bench_direct(url: str, body: bytes, rows: int) -> float:
    ensure_database(url)
    upgrade(url)
    engine = make_engine(url)
    with unit_of_work(engine) as session:
        tenant = Tenant(name="bench")
        session.add(tenant)
    keys = ingest.Keys(secrets.token_bytes(32), "")

    async def run() -> ingest.IngestJob:
        return await ingest.ingest_customers(engine, tenant.id, chunks(body), ingest.UploadFormat.ndjson, keys)

    started = time.perf_counter()
    job = anyio.run(run)
    elapsed = time.perf_counter() - started
    assert job.rows_ok == rows, job
    engine.dispose()
    return rows / elapsed


def bench_http(base_url: str, token: str, body: bytes, rows: int) -> float:
    import httpx

    started = time.perf_counter()
    response = httpx.post(
        base_url.rstrip("/") + "/v1/uploads/customers",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
        timeout=None,
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    assert response.json()["rows_ok"] == rows, response.text
    return rows / elapsed


def bench_copy(url: str, rows: int) -> float:
    engine = make_engine(url)
    with engine.begin() as connection:
        driver = connection.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE scratch (external_id text, email text)")
            started = time.perf_counter()
            with cursor.copy("COPY scratch (external_id, email) FROM STDIN") as copy:
                for i in range(rows):
                    copy.write_row((f"c-{i}", f"user{i}@example.com"))
            elapsed = time.perf_counter() - started
    engine.dispose()
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--database-url", required=True, help="PostgreSQL; created and migrated if missing")
    parser.add_argument("--url", help="upload over HTTP to this running server instead")
    parser.add_argument("--token", help="access token with customers:write (with --url)")
    args = parser.parse_args()
    body = generate(args.rows)
    if args.url:
        ingest_rate = bench_http(args.url, args.token, body, args.rows)
    else:
        ingest_rate = bench_direct(args.database_url, body, args.rows)
    copy_rate = bench_copy(args.database_url, args.rows)
    print(f"rows: {args.rows:,} ({len(body) / 1e6:.1f} MB NDJSON)")
    print(f"ingest: {ingest_rate:,.0f} rows/s")
    print(f"plain COPY: {copy_rate:,.0f} rows/s")
    print(f"ratio to COPY: {ingest_rate / copy_rate:.2f}")


if __name__ == "__main__":
    main()
