"""Bulk uploads for sync jobs: customers as NDJSON or CSV, streamed; a job resource per upload."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel

from api.auth.principal import CustomersWrite
from api.deps import EngineDep, SessionDep, SettingsDep
from api.idempotency import IdempotentRoute
from partners import ingest
from partners.errors import Invalid

router = APIRouter(prefix="/v1/uploads", tags=["uploads"], route_class=IdempotentRoute)

_FORMATS = {
    "application/x-ndjson": ingest.UploadFormat.ndjson,
    "application/ndjson": ingest.UploadFormat.ndjson,
    "text/csv": ingest.UploadFormat.csv,
}


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


def job_out(job: ingest.IngestJob) -> UploadJobOut:
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


@router.post(
    "/customers",
    status_code=201,
    summary="Upload customers (NDJSON or CSV), idempotent by external id; per-row errors by line",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
            "required": True,
        }
    },
)
async def upload_customers(
    request: Request,
    caller: CustomersWrite,
    engine: EngineDep,
    settings: SettingsDep,
    content_type: Annotated[str, Header()] = "application/x-ndjson",
) -> UploadJobOut:
    fmt = _FORMATS.get(content_type.split(";", 1)[0].strip().lower())
    if fmt is None:
        raise Invalid("Send application/x-ndjson or text/csv.", param="content-type")
    keys = ingest.Keys(
        hash_key=settings.identity_hash_key.get_secret_value().encode(),
        encryption_key=settings.encryption_key.get_secret_value(),
    )
    job = await ingest.ingest_customers(engine, caller.tenant_id, request.stream(), fmt, keys)
    return job_out(job)


@router.get("/{job_id}", summary="An upload's status, progress and first errors by line")
def get_upload(job_id: str, caller: CustomersWrite, session: SessionDep) -> UploadJobOut:
    return job_out(ingest.get_job(session, caller.tenant_id, job_id))
