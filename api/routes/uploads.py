"""Bulk uploads for sync jobs: customers, purchases and consent events as NDJSON or CSV, streamed.

Every upload answers with its job (rows kept, rows refused with their line numbers), and
`GET /v1/uploads/{job_id}` shows a job's progress while it runs. See docs/uploads.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel

from api.auth.principal import AnyScope, ConsentsWrite, CustomersWrite, Principal, insufficient_scope
from api.deps import EngineDep, SessionDep, SettingsDep
from api.pagination import Page, Paging
from partners import ingest_consents, ingest_customers, ingest_jobs, ingest_purchases, partnerships
from partners.errors import Invalid
from partners.ingest_jobs import JobKind, JobStatus, UploadFormat
from partners.scopes import Scope

# Not an IdempotentRoute: uploads are idempotent by their records' own ids, and fingerprinting a
# keyed request would read the whole body (up to MAX_UPLOAD_BYTES) into memory before streaming it.
router = APIRouter(prefix="/v1/uploads", tags=["uploads"])

_FORMATS = {
    "application/x-ndjson": UploadFormat.ndjson,
    "application/ndjson": UploadFormat.ndjson,
    "text/csv": UploadFormat.csv,
}
_BODY = {
    "requestBody": {
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
        },
        "required": True,
    }
}
# The scope a job's kind was uploaded under is the scope that reads it.
_READ_SCOPE = {
    JobKind.customers: Scope.customers_write,
    JobKind.purchases: Scope.customers_write,
    JobKind.consent_events: Scope.consents_write,
}
ContentType = Annotated[str, Header()]
# Either upload scope opens the list (showing the kinds it covers) and a job (of its kind).
_ANY_READER = AnyScope(tuple(dict.fromkeys(_READ_SCOPE.values())))
UploadsRead = Annotated[Principal, Depends(_ANY_READER)]


class RowErrorOut(BaseModel):
    line: int
    field: str | None
    message: str


class UploadJobOut(BaseModel):
    id: str
    kind: str
    status: str
    rows_seen: int
    rows_ok: int
    rows_failed: int
    errors: list[RowErrorOut]
    errors_truncated: bool
    created_at: datetime
    finished_at: datetime | None


def job_out(job: ingest_jobs.IngestJob) -> UploadJobOut:
    errors: list[dict[str, Any]] = job.errors or []
    return UploadJobOut(
        id=job.id,
        kind=job.kind,
        status=job.status,
        rows_seen=job.rows_seen,
        rows_ok=job.rows_ok,
        rows_failed=job.rows_failed,
        errors=[RowErrorOut(**error) for error in errors],
        errors_truncated=job.rows_failed > len(errors),
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


def _format(content_type: str) -> UploadFormat:
    fmt = _FORMATS.get(content_type.split(";", 1)[0].strip().lower())
    if fmt is None:
        raise Invalid("Send application/x-ndjson or text/csv.", param="content-type")
    return fmt


@router.post(
    "/customers",
    status_code=201,
    summary="Upload customers (NDJSON or CSV), idempotent by external id; per-row errors by line",
    openapi_extra=_BODY,
)
async def upload_customers(
    request: Request,
    caller: CustomersWrite,
    engine: EngineDep,
    settings: SettingsDep,
    content_type: ContentType = "application/x-ndjson",
) -> UploadJobOut:
    fmt = _format(content_type)
    keys = ingest_customers.Keys(
        hash_key=settings.identity_hash_key.get_secret_value().encode(),
        encryption_key=settings.encryption_key.get_secret_value(),
    )
    job = await ingest_customers.ingest_customers(engine, caller.tenant_id, request.stream(), fmt, keys)
    return job_out(job)


@router.post(
    "/purchases",
    status_code=201,
    summary="Upload orders (NDJSON or CSV), idempotent by order id; profiles follow; per-row errors by line",
    openapi_extra=_BODY,
)
async def upload_purchases(
    request: Request, caller: CustomersWrite, engine: EngineDep, content_type: ContentType = "application/x-ndjson"
) -> UploadJobOut:
    fmt = _format(content_type)
    job = await ingest_purchases.ingest_purchases(engine, caller.tenant_id, request.stream(), fmt)
    return job_out(job)


@router.post(
    "/consent-events",
    status_code=201,
    summary="Upload consent events (NDJSON or CSV), idempotent by event id; per-row errors by line",
    openapi_extra=_BODY,
)
async def upload_consent_events(
    request: Request, caller: ConsentsWrite, engine: EngineDep, content_type: ContentType = "application/x-ndjson"
) -> UploadJobOut:
    fmt = _format(content_type)
    job = await ingest_consents.ingest_consent_events(
        engine, caller.tenant_id, request.stream(), fmt, is_active_partner=partnerships.is_active_partner
    )
    return job_out(job)


@router.get(
    "",
    summary="The tenant's uploads, oldest first: find a running one while it streams",
    openapi_extra=_ANY_READER.openapi,
)
def list_uploads(
    caller: UploadsRead,
    session: SessionDep,
    paging: Paging,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status, such as running")] = None,
) -> Page[UploadJobOut]:
    kinds = [kind for kind, scope in _READ_SCOPE.items() if str(scope) in caller.scopes]
    rows, more = ingest_jobs.list_jobs(session, caller.tenant_id, kinds, paging.after, paging.limit, status)
    return paging.page([job_out(job) for job in rows], more, rows[-1].id if rows else None)


@router.get(
    "/{job_id}", summary="An upload's status, progress and first errors by line", openapi_extra=_ANY_READER.openapi
)
def get_upload(job_id: str, caller: UploadsRead, session: SessionDep) -> UploadJobOut:
    job = ingest_jobs.get_job(session, caller.tenant_id, job_id)
    needed = _READ_SCOPE.get(JobKind(job.kind), Scope.customers_write)
    if str(needed) not in caller.scopes:
        raise insufficient_scope(str(needed), f"Reading a {job.kind} upload needs the scope '{needed}'.")
    return job_out(job)
