"""Bulk ingest of customers from NDJSON or CSV, idempotent by external id.

Lines are checked on their own (`partners.ingest_rows`); valid rows are upserted a batch at
a time (`partners.ingest_jobs` runs the upload): on PostgreSQL by COPY into a staging table
merged with `INSERT … SELECT … ON CONFLICT`, on SQLite with one executemany upsert.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from partners import bulk
from partners.customers import Customer, Suppression, SuppressionKind, email_fields, suppression_hash
from partners.db import utcnow
from partners.errors import DomainError
from partners.ids import new_id
from partners.ingest_jobs import IngestJob, JobKind, Lines, Progress, Upload, UploadFormat, run_upload
from partners.ingest_rows import CustomerRow, RowError, parse_csv_customer, parse_csv_header, parse_ndjson_customer


@dataclass(frozen=True)
class Keys:
    hash_key: bytes
    encryption_key: str


@dataclass(frozen=True)
class _Prepared:
    external_id: str
    email_hash: str | None
    email_encrypted: str | None


async def ingest_customers(
    engine: Engine, tenant_id: str, chunks: AsyncIterable[bytes], fmt: UploadFormat, keys: Keys
) -> IngestJob:
    """Read an upload of customers to its end; the finished job (status done, or failed)."""

    def read(lines: Lines, header: list[str] | None, _final: bool) -> tuple[list[_Checked], Lines]:
        return [_read(number, raw, header, keys) for number, raw in lines], []

    def write(
        session: Session,
        tenant_id: str,
        rows: list[_Checked],
        _header: list[str] | None,
        progress: Progress,
        _final: bool,
    ) -> Lines:
        _write_batch(session, tenant_id, rows, keys, progress)
        return []

    upload = Upload(JobKind.customers, parse_csv_header, write, read=read)  # type: ignore[arg-type]
    return await run_upload(engine, tenant_id, upload, chunks, fmt)


# A line read and checked: the customer's stored form (hashed, encrypted), or why it is refused.
_Checked = tuple[int, "_Prepared | RowError"]


def _read(number: int, raw: bytes, header: list[str] | None, keys: Keys) -> _Checked:
    """One line checked and prepared without the database (the HMAC and encryption included)."""
    parsed = parse_ndjson_customer(number, raw) if header is None else parse_csv_customer(number, raw, header)
    return number, parsed if isinstance(parsed, RowError) else _prepare(parsed, keys)


def _write_batch(session: Session, tenant_id: str, checked: list[_Checked], keys: Keys, progress: Progress) -> None:
    """Count one batch of checked customers, refuse erased ones, and upsert the rest."""
    rows: list[tuple[int, _Prepared]] = []
    for number, prepared in checked:
        progress.rows_seen += 1
        if isinstance(prepared, RowError):
            progress.fail(prepared)
        else:
            rows.append((number, prepared))
    if not rows:
        return
    refused = _suppressed(session, tenant_id, keys.hash_key, [row for _, row in rows])
    kept: dict[str, _Prepared] = {}
    for number, row in rows:
        if row.external_id in refused or (row.email_hash is not None and row.email_hash in refused):
            param = "external_id" if row.external_id in refused else "email"
            progress.fail(RowError(number, param, "This customer asked to be erased; it is not registered again."))
            continue
        kept.pop(row.external_id, None)  # A later line about the same customer wins.
        kept[row.external_id] = row
        progress.rows_ok += 1
    _upsert(session, tenant_id, list(kept.values()))


def _prepare(row: CustomerRow, keys: Keys) -> _Prepared | RowError:
    try:
        fields = email_fields(row.email, row.store_email, keys.hash_key, keys.encryption_key)
    except DomainError as exc:
        return RowError(row.line, exc.param, exc.detail)
    return _Prepared(row.external_id, fields.email_hash, fields.email_encrypted)


def _suppressed(session: Session, tenant_id: str, key: bytes, rows: Sequence[_Prepared]) -> set[str]:
    """External ids and email hashes of this batch that belong to erased customers."""
    owned = col(Suppression.tenant_id) == tenant_id
    if session.exec(select(Suppression.value_hash).where(owned).limit(1)).first() is None:
        return set()  # most tenants have erased no one: no need to hash and look up the batch
    wanted: dict[str, str] = {}
    for row in rows:
        wanted[suppression_hash(key, tenant_id, SuppressionKind.external_id, row.external_id)] = row.external_id
        if row.email_hash is not None:
            wanted[suppression_hash(key, tenant_id, SuppressionKind.email, row.email_hash)] = row.email_hash
    found = session.exec(
        select(Suppression.value_hash).where(owned, bulk.one_of(session, col(Suppression.value_hash), list(wanted)))
    ).all()
    return {wanted[value_hash] for value_hash in found}


def _upsert(session: Session, tenant_id: str, rows: Sequence[_Prepared]) -> None:
    if not rows:
        return
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        _upsert_postgres(session, tenant_id, rows, now)
        return
    table = Customer.__table__  # type: ignore[attr-defined]
    statement = sqlite_insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=["tenant_id", "external_id"],
        set_={
            "email_hash": statement.excluded.email_hash,
            "email_encrypted": statement.excluded.email_encrypted,
            "updated_at": statement.excluded.updated_at,
        },
        where=text(
            "customers.email_hash IS NOT excluded.email_hash"
            " OR customers.email_encrypted IS NOT excluded.email_encrypted"
        ),
    )
    session.execute(
        statement,
        [
            {
                "tenant_id": tenant_id,
                "id": new_id("cus"),
                "external_id": row.external_id,
                "email_hash": row.email_hash,
                "email_encrypted": row.email_encrypted,
                "created_at": now,
                "updated_at": now,
            }
            for row in rows
        ],
    )


_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS ingest_customers_stage "
    "(id text, external_id text, email_hash text, email_encrypted text) ON COMMIT DELETE ROWS"
)
_MERGE = """
INSERT INTO customers (tenant_id, id, external_id, email_hash, email_encrypted, created_at, updated_at)
SELECT %(tenant)s, s.id, s.external_id, s.email_hash, s.email_encrypted, %(now)s, %(now)s
FROM ingest_customers_stage s
ON CONFLICT (tenant_id, external_id) DO UPDATE
SET email_hash = excluded.email_hash, email_encrypted = excluded.email_encrypted, updated_at = excluded.updated_at
WHERE (customers.email_hash, customers.email_encrypted)
    IS DISTINCT FROM (excluded.email_hash, excluded.email_encrypted)
"""


def _upsert_postgres(session: Session, tenant_id: str, rows: Sequence[_Prepared], now: datetime) -> None:
    """COPY the batch into a per-connection staging table, then merge it in one statement."""
    driver: Any = session.connection().connection.driver_connection
    with driver.cursor() as cursor:
        cursor.execute(_STAGING)
        with cursor.copy(
            "COPY ingest_customers_stage (id, external_id, email_hash, email_encrypted) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row((new_id("cus"), row.external_id, row.email_hash, row.email_encrypted))
        cursor.execute(_MERGE, {"tenant": tenant_id, "now": now})
        cursor.execute("TRUNCATE ingest_customers_stage")
