"""The job every bulk upload runs under, and the streaming loop all kinds of upload share.

An upload is read chunk by chunk and cut into lines; lines are handed, a batch at a time, to
the kind's writer (customers, purchases, consent events) in a worker thread. Each batch is
one transaction that also records the job's progress, so a long upload shows its progress
while it streams and keeps what was written if the connection drops. Per-row errors (the
first `MAX_ERRORS`) are kept on the job with their line numbers.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import anyio.abc
import anyio.to_thread
from sqlalchemy import JSON, Engine
from sqlmodel import Field, Session, SQLModel, col

from partners.db import UTCDateTime, get_owned, keyset_page, owned, unit_of_work, utcnow
from partners.errors import Invalid
from partners.ids import new_id
from partners.ingest_rows import RowError, numbered_lines

BATCH_SIZE = 5_000
MAX_ERRORS = 1_000

Lines = list[tuple[int, bytes]]


class JobKind(StrEnum):
    customers = "customers"
    purchases = "purchases"
    consent_events = "consent_events"


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


@dataclass
class Progress:
    """Counts of the upload so far; writers add to them as they go."""

    rows_seen: int = 0
    rows_ok: int = 0
    rows_failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def fail(self, error: RowError) -> None:
        """Count a refused row, keeping its error while fewer than MAX_ERRORS are kept."""
        self.rows_failed += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(error.as_dict())


# Checks and stores one batch of numbered lines in the session (tenant, lines, CSV header or None
# for NDJSON, progress, whether this is the last batch); returns trailing lines it cannot judge
# yet (a record continuing in the next batch), which come back at the head of the next batch.
BatchWriter = Callable[[Session, str, Lines, list[str] | None, Progress, bool], Lines]


# Reads and checks one batch without the database (lines, CSV header or None, whether last):
# what `write` then stores, and trailing lines that come back at the head of the next batch.
BatchReader = Callable[[Lines, list[str] | None, bool], tuple[Any, Lines]]


@dataclass(frozen=True)
class Upload:
    """One kind of upload: its job kind, how to read a CSV header, how to write a batch.

    With `read`, a batch is read and checked in one thread while the batch before it is
    written in another (the database's time overlaps ours); `write` then gets what `read`
    returned in place of lines, and returns no lines.
    """

    kind: JobKind
    parse_header: Callable[[int, bytes], list[str] | RowError]
    write: BatchWriter
    batch_size: int | None = None  # BATCH_SIZE unless the kind needs smaller batches
    read: BatchReader | None = None


def get_job(session: Session, tenant_id: str, job_id: str) -> IngestJob:
    """The tenant's upload job; NotFound for another tenant's as for a missing one."""
    return get_owned(session, IngestJob, tenant_id, job_id)


def list_jobs(
    session: Session, tenant_id: str, kinds: Sequence[JobKind], after: str | None, limit: int, status: str | None
) -> tuple[Sequence[IngestJob], bool]:
    """The tenant's upload jobs of these kinds, oldest first, optionally in one status."""
    query = owned(IngestJob, tenant_id).where(col(IngestJob.kind).in_([str(kind) for kind in kinds]))
    if status is not None:
        query = query.where(col(IngestJob.status) == status)
    return keyset_page(session, query, IngestJob, after, limit)


async def run_upload(
    engine: Engine, tenant_id: str, upload: Upload, chunks: AsyncIterable[bytes], fmt: UploadFormat
) -> IngestJob:
    """Read an upload to its end, batch by batch; the finished job (status done, or failed)."""
    job = await anyio.to_thread.run_sync(_start, engine, tenant_id, upload.kind)
    progress = Progress()
    header: list[str] | None = None
    pending: Lines = []
    data_lines = 0
    written = anyio.Event()  # the batch being written (none yet) is done
    written.set()

    async def write(batch: Any, final: bool, done: anyio.Event) -> None:
        # Shielded: a batch read in full is written even if the stream breaks meanwhile.
        with anyio.CancelScope(shield=True):
            try:
                await anyio.to_thread.run_sync(
                    _write_batch, engine, tenant_id, job.id, upload, batch, header, progress, final
                )
            finally:
                done.set()

    async def flush(final: bool, group: anyio.abc.TaskGroup) -> Lines:
        nonlocal written
        if upload.read is None:
            return await anyio.to_thread.run_sync(
                _write_batch, engine, tenant_id, job.id, upload, pending, header, progress, final
            )
        # Read this batch while the one before is still being written; write it once that is done.
        batch, carried = await anyio.to_thread.run_sync(upload.read, pending, header, final)
        await written.wait()
        written = anyio.Event()
        group.start_soon(write, batch, final, written)
        return carried

    try:
        async with anyio.create_task_group() as group:
            async for number, raw in numbered_lines(chunks):
                if not raw.strip():
                    continue
                if fmt == UploadFormat.csv and header is None:
                    parsed = upload.parse_header(number, raw)
                    if isinstance(parsed, RowError):
                        raise Invalid(f"Line {number}: {parsed.message}", param=parsed.field)
                    header = parsed
                    continue
                pending.append((number, raw))
                data_lines += 1
                if len(pending) >= (upload.batch_size or BATCH_SIZE):
                    pending = await flush(False, group)
            if fmt == UploadFormat.csv and header is None:
                raise Invalid("The CSV upload is empty; the first line must be a header.", param="body")
            if data_lines == 0:
                raise Invalid("The upload holds no records; send at least one line.", param="body")
            await flush(True, group)
    except BaseExceptionGroup as group_error:
        # A failed write surfaces from the task group wrapped; report the error itself.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_finish, engine, tenant_id, job.id, progress, JobStatus.failed)
        raise group_error.exceptions[0] from None
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_finish, engine, tenant_id, job.id, progress, JobStatus.failed)
        raise
    return await anyio.to_thread.run_sync(_finish, engine, tenant_id, job.id, progress, JobStatus.done)


def _write_batch(
    engine: Engine,
    tenant_id: str,
    job_id: str,
    upload: Upload,
    lines: Lines,
    header: list[str] | None,
    progress: Progress,
    final: bool,
) -> Lines:
    # Counted into a copy: if the batch's transaction fails, the job keeps the counts it committed.
    attempt = Progress(progress.rows_seen, progress.rows_ok, progress.rows_failed, list(progress.errors))
    with unit_of_work(engine) as session:
        carried = upload.write(session, tenant_id, lines, header, attempt, final) if lines else []
        # Writers find errors in several passes; within a batch, report them in file order.
        attempt.errors[len(progress.errors) :] = sorted(attempt.errors[len(progress.errors) :], key=_line)
        _save_progress(session, tenant_id, job_id, attempt)
    progress.rows_seen, progress.rows_ok, progress.rows_failed = attempt.rows_seen, attempt.rows_ok, attempt.rows_failed
    progress.errors = attempt.errors
    return carried


def _line(error: dict[str, Any]) -> int:
    return int(error["line"])


def _start(engine: Engine, tenant_id: str, kind: JobKind) -> IngestJob:
    with unit_of_work(engine) as session:
        job = IngestJob(tenant_id=tenant_id, kind=kind.value, status=JobStatus.running.value)
        session.add(job)
    return job


def _save_progress(session: Session, tenant_id: str, job_id: str, progress: Progress) -> IngestJob:
    job = get_job(session, tenant_id, job_id)
    job.rows_seen, job.rows_ok, job.rows_failed = progress.rows_seen, progress.rows_ok, progress.rows_failed
    job.errors = list(progress.errors)
    session.add(job)
    return job


def _finish(engine: Engine, tenant_id: str, job_id: str, progress: Progress, status: JobStatus) -> IngestJob:
    with unit_of_work(engine) as session:
        job = _save_progress(session, tenant_id, job_id, progress)
        job.status = status.value
        job.finished_at = utcnow()
        session.flush()
    return job
