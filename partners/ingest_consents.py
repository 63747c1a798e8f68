"""Bulk ingest of consent events (NDJSON or CSV), each through the single route's rules.

A consent event is evidence: every row goes through `partners.consent.record_event` exactly
as `POST /v1/customers/{external_id}/consent-events` does (active partner, notice, clock
skew, duplicates by event id, customer lock, `consent.withdrawn` into the outbox), in a
savepoint of its batch's transaction so a refused row leaves no trace. The state rows are
re-folded once per batch, for every customer it touched, before the batch commits.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Any

from pydantic import Field, ValidationError
from sqlalchemy import Engine
from sqlmodel import Session

from partners import consent
from partners.consent_input import ConsentEventIn
from partners.consent_ledger import refresh_many
from partners.consent_rules import Purpose
from partners.errors import DomainError
from partners.ingest_jobs import IngestJob, JobKind, Lines, Progress, Upload, UploadFormat, run_upload
from partners.ingest_rows import RowError, csv_cells, csv_header, domain_error, json_object, validation_error
from partners.notices import IsActivePartner

# Each event takes a savepoint and a lock (the re-fold is once a batch): smaller batches keep progress moving.
BATCH_SIZE = 1_000
CSV_REQUIRED = ("external_id", "event_id", "action", "method", "source", "occurred_at")
CSV_OPTIONAL = ("purposes", "partner", "notice_id", "confirms", "origin_ip", "origin_user_agent", "origin_page_url")
_ORIGIN_COLUMNS = {"origin_ip": "ip", "origin_user_agent": "user_agent", "origin_page_url": "page_url"}
_PURPOSE_SEPARATORS = re.compile(r"[|\s]+")


class _EventIn(ConsentEventIn):
    """The single route's body, plus the customer's external id."""

    external_id: str = Field(max_length=128)


@dataclass(frozen=True)
class EventRow:
    line: int
    external_id: str
    event: consent.ConsentInput


def _row(line: int, values: dict[str, Any], rename: dict[str, str] | None = None) -> EventRow | RowError:
    try:
        body = _EventIn.model_validate(values)
    except ValidationError as exc:
        return validation_error(line, exc, rename)
    return EventRow(line, body.external_id, body.domain())


def parse_ndjson_event(line: int, raw: bytes) -> EventRow | RowError:
    """One NDJSON line: the single route's body plus `external_id`."""
    values = json_object(line, raw)
    return values if isinstance(values, RowError) else _row(line, values)


def parse_csv_header(line: int, raw: bytes) -> list[str] | RowError:
    """The header of a consent events CSV upload."""
    return csv_header(line, raw, CSV_REQUIRED, CSV_OPTIONAL)


def parse_csv_event(line: int, raw: bytes, header: list[str]) -> EventRow | RowError:
    """One CSV line: purposes separated by `|` or spaces, origin in three columns."""
    cells = csv_cells(line, raw, header)
    if isinstance(cells, RowError):
        return cells
    values: dict[str, Any] = {name: cell for name, cell in cells.items() if name not in _ORIGIN_COLUMNS}
    if "purposes" in values:
        values["purposes"] = [p for p in _PURPOSE_SEPARATORS.split(values["purposes"]) if p]
    origin = {_ORIGIN_COLUMNS[name]: cell for name, cell in cells.items() if name in _ORIGIN_COLUMNS}
    if origin:
        values["origin"] = origin
    rename = {f"origin.{short}": column for column, short in _ORIGIN_COLUMNS.items()}
    return _row(line, values, {**rename, **{f"purposes.{i}": "purposes" for i in range(len(Purpose) + 1)}})


def _cached(check: IsActivePartner) -> IsActivePartner:
    """The partnership check, asked once per partner in a batch."""
    answers: dict[tuple[str, str], bool] = {}

    def cached(session: Session, tenant_id: str, partner_id: str) -> bool:
        key = (tenant_id, partner_id)
        if key not in answers:
            answers[key] = check(session, tenant_id, partner_id)
        return answers[key]

    return cached


async def ingest_consent_events(
    engine: Engine,
    tenant_id: str,
    chunks: AsyncIterable[bytes],
    fmt: UploadFormat,
    *,
    is_active_partner: IsActivePartner,
) -> IngestJob:
    """Read an upload of consent events to its end; the finished job (status done, or failed)."""

    def write(
        session: Session, tenant_id: str, lines: Lines, header: list[str] | None, progress: Progress, _final: bool
    ) -> Lines:
        active = _cached(is_active_partner)
        refold: dict[str, set[str]] = {}  # customer id -> purposes whose state rows are behind
        for number, raw in lines:
            progress.rows_seen += 1
            row = parse_ndjson_event(number, raw) if header is None else parse_csv_event(number, raw, header)
            if isinstance(row, RowError):
                progress.fail(row)
                continue
            try:
                with session.begin_nested():
                    recorded = consent.record_event(
                        session, tenant_id, row.external_id, row.event, is_active_partner=active, refold=False
                    )
            except DomainError as exc:
                progress.fail(domain_error(number, exc))
            else:
                progress.rows_ok += 1
                if not recorded.replayed:
                    refold.setdefault(recorded.customer.id, set()).update(e.purpose for e in recorded.events)
        # Nothing in the batch reads the states; folding each customer once here ends where folding
        # after every row would, in two reads per 500 customers instead of two per row.
        refresh_many(session, tenant_id, refold)
        return []

    upload = Upload(JobKind.consent_events, parse_csv_header, write, BATCH_SIZE)
    return await run_upload(engine, tenant_id, upload, chunks, fmt)
