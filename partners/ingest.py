"""Bulk ingest of customers from NDJSON or CSV, streamed, idempotent by external id.

The upload is read chunk by chunk; every line is checked on its own (`partners.ingest_rows`),
and valid rows are written in batches: on PostgreSQL with COPY into a temporary staging
table merged by `INSERT … SELECT … ON CONFLICT`, on SQLite with one executemany upsert.
Each batch commits together with the job's progress, so a long upload shows its progress
while it streams and keeps what was written if the connection drops. Per-row errors
(the first `MAX_ERRORS`) are kept on the job with their line numbers.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import anyio.to_thread
from sqlalchemy import JSON, Engine, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col, select

from partners.customers import Customer, Suppression, SuppressionKind, email_fields, suppression_hash
from partners.db import UTCDateTime, get_owned, unit_of_work, utcnow
from partners.errors import DomainError, Invalid
from partners.ids import new_id
from partners.ingest_rows import (
    CustomerRow,
    RowError,
    numbered_lines,
    parse_csv_customer,
    parse_csv_header,
    parse_ndjson_customer,
)

BATCH_SIZE = 5_000
MAX_ERRORS = 1_000


class JobKind(StrEnum):
    customers = "customers"


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class UploadFormat(StrEnum):
    ndjson = "ndjson"
    csv = "csv"


class IngestJob(SQLModel, table=True):
    """One bulk upload: what it carried, how far it got, and the first errors by line."""

    __tablename__ = "ingest_jobs"

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    id: str = Field(default_factory=lambda: new_id("ing"), primary_key=True, max_length=40)
    kind: str = Field(max_length=20)
    status: str = Field(default=JobStatus.queued.value, max_length=20)
    rows_seen: int = 0
    rows_ok: int = 0
    rows_failed: int = 0
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


@dataclass(frozen=True)
class Keys:
    hash_key: bytes
    encryption_key: str


@dataclass(frozen=True)
class _Prepared:
    external_id: str
    email_hash: str | None
    email_encrypted: str | None


@dataclass
class _Progress:
    rows_seen: int = 0
    rows_ok: int = 0
    rows_failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def fail(self, error: RowError) -> None:
        self.rows_failed += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(error.as_dict())


def get_job(session: Session, tenant_id: str, job_id: str) -> IngestJob:
    """The tenant's upload job; NotFound for another tenant's as for a missing one."""
    return get_owned(session, IngestJob, tenant_id, job_id)


async def ingest_customers(
    engine: Engine, tenant_id: str, chunks: AsyncIterable[bytes], fmt: UploadFormat, keys: Keys
) -> IngestJob:
    """Read an upload of customers to its end; the finished job (status done, or failed)."""
    job = await anyio.to_thread.run_sync(_start, engine, tenant_id)
    progress = _Progress()
    header: list[str] | None = None
    pending: list[tuple[int, bytes]] = []
    try:
        async for number, raw in numbered_lines(chunks):
            if not raw.strip():
                continue
            if fmt == UploadFormat.csv and header is None:
                parsed = parse_csv_header(number, raw)
                if isinstance(parsed, RowError):
                    raise Invalid(f"Line {number}: {parsed.message}", param=parsed.field)
                header = parsed
                continue
            pending.append((number, raw))
            if len(pending) >= BATCH_SIZE:
                await anyio.to_thread.run_sync(_write_batch, engine, job.id, tenant_id, pending, header, keys, progress)
                pending = []
        if fmt == UploadFormat.csv and header is None:
            raise Invalid("The CSV upload is empty; the first line must be a header.", param="body")
        await anyio.to_thread.run_sync(_write_batch, engine, job.id, tenant_id, pending, header, keys, progress)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_finish, engine, tenant_id, job.id, progress, JobStatus.failed)
        raise
    return await anyio.to_thread.run_sync(_finish, engine, tenant_id, job.id, progress, JobStatus.done)


def _start(engine: Engine, tenant_id: str) -> IngestJob:
    with unit_of_work(engine) as session:
        job = IngestJob(tenant_id=tenant_id, kind=JobKind.customers.value, status=JobStatus.running.value)
        session.add(job)
    return job


def _save_progress(session: Session, tenant_id: str, job_id: str, progress: _Progress) -> IngestJob:
    job = get_job(session, tenant_id, job_id)
    job.rows_seen, job.rows_ok, job.rows_failed = progress.rows_seen, progress.rows_ok, progress.rows_failed
    job.errors = list(progress.errors)
    session.add(job)
    return job


def _finish(engine: Engine, tenant_id: str, job_id: str, progress: _Progress, status: JobStatus) -> IngestJob:
    with unit_of_work(engine) as session:
        job = _save_progress(session, tenant_id, job_id, progress)
        job.status = status.value
        job.finished_at = utcnow()
        session.flush()
    return job


def _write_batch(
    engine: Engine,
    job_id: str,
    tenant_id: str,
    lines: Sequence[tuple[int, bytes]],
    header: list[str] | None,
    keys: Keys,
    progress: _Progress,
) -> None:
    """Check, prepare and upsert one batch, and record the job's progress in the same transaction."""
    rows: list[tuple[int, _Prepared]] = []
    for number, raw in lines:
        progress.rows_seen += 1
        parsed = parse_ndjson_customer(number, raw) if header is None else parse_csv_customer(number, raw, header)
        if isinstance(parsed, RowError):
            progress.fail(parsed)
            continue
        prepared = _prepare(parsed, keys)
        if isinstance(prepared, RowError):
            progress.fail(prepared)
        else:
            rows.append((number, prepared))
    with unit_of_work(engine) as session:
        if rows:
            refused = _suppressed(session, tenant_id, keys.hash_key, [row for _, row in rows])
            kept: dict[str, _Prepared] = {}
            for number, row in rows:
                if row.external_id in refused or (row.email_hash is not None and row.email_hash in refused):
                    param = "external_id" if row.external_id in refused else "email"
                    progress.fail(
                        RowError(number, param, "This customer asked to be erased; it is not registered again.")
                    )
                    continue
                kept.pop(row.external_id, None)  # A later line about the same customer wins.
                kept[row.external_id] = row
                progress.rows_ok += 1
            _upsert(session, tenant_id, list(kept.values()))
        _save_progress(session, tenant_id, job_id, progress)


def _prepare(row: CustomerRow, keys: Keys) -> _Prepared | RowError:
    try:
        fields = email_fields(row.email, row.store_email, keys.hash_key, keys.encryption_key)
    except DomainError as exc:
        return RowError(row.line, exc.param, exc.detail)
    return _Prepared(row.external_id, fields.email_hash, fields.email_encrypted)


def _suppressed(session: Session, tenant_id: str, key: bytes, rows: Sequence[_Prepared]) -> set[str]:
    """External ids and email hashes of this batch that belong to erased customers."""
    wanted: dict[str, str] = {}
    for row in rows:
        wanted[suppression_hash(key, tenant_id, SuppressionKind.external_id, row.external_id)] = row.external_id
        if row.email_hash is not None:
            wanted[suppression_hash(key, tenant_id, SuppressionKind.email, row.email_hash)] = row.email_hash
    found = session.exec(
        select(Suppression.value_hash).where(
            col(Suppression.tenant_id) == tenant_id, col(Suppression.value_hash).in_(list(wanted))
        )
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
