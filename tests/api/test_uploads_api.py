"""Bulk upload of customers: NDJSON and CSV, per-row errors by line, idempotent, tenant-scoped."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from partners import ingest_customers, ingest_jobs
from partners.customers import Customer
from partners.identity import keyed_email_hash, normalize_email
from partners.privacy import erase_customer
from partners.retailers import Tenant
from partners.settings import Settings
from tests.flows import bearer

NDJSON = {"content-type": "application/x-ndjson"}
CSV = {"content-type": "text/csv"}


@pytest.fixture
def shop(make_tenant: Callable[..., Tenant], token_for: Callable[..., str]) -> tuple[Tenant, dict[str, str]]:
    tenant = make_tenant()
    return tenant, bearer(token_for(["customers:write"], tenant=tenant))


def ndjson(rows: list[Any]) -> bytes:
    return b"".join((row if isinstance(row, bytes) else json.dumps(row).encode()) + b"\n" for row in rows)


def count(session: Session, tenant: Tenant) -> int:
    session.expire_all()
    query = select(func.count()).select_from(Customer).where(col(Customer.tenant_id) == tenant.id)
    return session.exec(query).one()


def upload(client: TestClient, headers: dict[str, str], body: bytes, kind: dict[str, str] = NDJSON) -> Any:
    response = client.post("/v1/uploads/customers", content=body, headers={**headers, **kind})
    assert response.status_code == 201, response.text
    return response.json()


def test_ndjson_bad_line_in_the_middle_is_reported_and_the_rest_kept(
    client: TestClient, shop: tuple[Tenant, dict[str, str]], session: Session
) -> None:
    tenant, headers = shop
    rows: list[Any] = [{"external_id": f"c-{i}", "email": f"user{i}@example.com"} for i in range(3000)]
    rows.insert(1500, b'{"external_id": "broken",')
    job = upload(client, headers, ndjson(rows))
    assert job["status"] == "done"
    assert (job["rows_seen"], job["rows_ok"], job["rows_failed"]) == (3001, 3000, 1)
    assert job["errors"][0]["line"] == 1501
    assert "JSON" in job["errors"][0]["message"]
    assert count(session, tenant) == 3000


def test_csv_upload_with_a_bad_row(client: TestClient, shop: tuple[Tenant, dict[str, str]], session: Session) -> None:
    tenant, headers = shop
    lines = ["external_id,email,store_email"] + [f"c-{i},user{i}@example.com,false" for i in range(2000)]
    lines.insert(1001, "has space,x@example.com,false")
    job = upload(client, headers, ("\r\n".join(lines) + "\r\n").encode(), CSV)
    assert (job["rows_ok"], job["rows_failed"]) == (2000, 1)
    assert job["errors"] == [{"line": 1002, "field": "external_id", "message": job["errors"][0]["message"]}]
    assert count(session, tenant) == 2000


def test_re_upload_is_idempotent_and_applies_updates(
    client: TestClient, shop: tuple[Tenant, dict[str, str]], session: Session, settings: Settings
) -> None:
    tenant, headers = shop
    upload(client, headers, ndjson([{"external_id": f"c-{i}", "email": f"a{i}@example.com"} for i in range(6000)]))
    again = [{"external_id": f"c-{i}", "email": f"b{i}@example.com"} for i in range(6000)]
    again.append({"external_id": "c-1", "email": "last@example.com"})  # a later line about one customer wins
    job = upload(client, headers, ndjson(again))
    assert job["rows_failed"] == 0
    assert count(session, tenant) == 6000
    key = settings.identity_hash_key.get_secret_value().encode()
    stored = session.exec(
        select(Customer).where(col(Customer.tenant_id) == tenant.id, col(Customer.external_id).in_(["c-0", "c-1"]))
    ).all()
    hashes = {c.external_id: c.email_hash for c in stored}
    assert hashes["c-0"] == keyed_email_hash(key, normalize_email("b0@example.com"))
    assert hashes["c-1"] == keyed_email_hash(key, normalize_email("last@example.com"))


def test_malformed_email_and_suppressed_customer_are_refused_per_row(
    client: TestClient,
    shop: tuple[Tenant, dict[str, str]],
    session: Session,
    settings: Settings,
    make_customer: Callable[..., Customer],
) -> None:
    tenant, headers = shop
    key = settings.identity_hash_key.get_secret_value().encode()
    make_customer(tenant, "gone", email="gone@example.com")
    make_customer(tenant, "gone-too")
    erase_customer(session, tenant.id, "gone", hash_key=key)
    erase_customer(session, tenant.id, "gone-too", hash_key=key)
    session.commit()
    rows = [
        {"external_id": "ok-1", "email": "fine@example.com"},
        {"external_id": "bad-email", "email": "not-an-address"},
        {"external_id": "new-id", "email": "Gone@Example.com"},
        {"external_id": "gone-too"},
        {"external_id": "ok-2"},
    ]
    job = upload(client, headers, ndjson(rows))
    assert job["rows_ok"] == 2
    assert [(e["line"], e["field"]) for e in job["errors"]] == [(2, "email"), (3, "email"), (4, "external_id")]
    assert "erased" in job["errors"][1]["message"]
    assert count(session, tenant) == 2


def test_progress_and_another_tenant_cannot_read_the_job(
    client: TestClient,
    shop: tuple[Tenant, dict[str, str]],
    make_tenant: Callable[..., Tenant],
    token_for: Callable[..., str],
) -> None:
    _, headers = shop
    job = upload(client, headers, ndjson([{"external_id": f"c-{i}"} for i in range(12_000)] + [b"[]"]))
    seen = client.get(f"/v1/uploads/{job['id']}", headers=headers)
    assert seen.status_code == 200
    body = seen.json()
    assert (body["status"], body["rows_seen"], body["rows_ok"], body["rows_failed"]) == ("done", 12_001, 12_000, 1)
    assert body["errors"][0]["line"] == 12_001
    other = bearer(token_for(["customers:write"], tenant=make_tenant()))
    assert client.get(f"/v1/uploads/{job['id']}", headers=other).status_code == 404


def test_unknown_content_type_and_empty_csv(client: TestClient, shop: tuple[Tenant, dict[str, str]]) -> None:
    _, headers = shop
    bad = client.post("/v1/uploads/customers", content=b"x", headers={**headers, "content-type": "text/plain"})
    assert bad.status_code == 422
    empty = client.post("/v1/uploads/customers", content=b"", headers={**headers, **CSV})
    assert empty.status_code == 422


@pytest.mark.parametrize("kind", ["customers", "purchases", "consent-events"])
def test_an_upload_without_records_is_refused(
    client: TestClient, shop: tuple[Tenant, dict[str, str]], token_for: Callable[..., str], kind: str
) -> None:
    # Found by the fuzzer: an empty body made a finished job of nothing (201).
    tenant, _ = shop
    headers = bearer(token_for(["customers:write", "consents:write"], tenant=tenant))
    empty = client.post(f"/v1/uploads/{kind}", content=b"\n \n", headers={**headers, **NDJSON})
    assert empty.status_code == 422, empty.text
    assert empty.json()["param"] == "body" and "no records" in empty.json()["detail"]


def test_progress_is_committed_batch_by_batch(engine: Any, make_tenant: Callable[..., Tenant]) -> None:
    tenant = make_tenant()
    keys = ingest_customers.Keys(b"k" * 32, "")
    seen: list[tuple[str, int]] = []

    async def chunks() -> Any:
        for batch in range(3):
            if batch:
                with Session(engine) as other:
                    job = other.exec(
                        select(ingest_jobs.IngestJob).where(col(ingest_jobs.IngestJob.tenant_id) == tenant.id)
                    ).one()
                    seen.append((job.status, job.rows_ok))
            yield ndjson([{"external_id": f"c-{batch}-{i}"} for i in range(ingest_jobs.BATCH_SIZE)])

    async def run() -> ingest_jobs.IngestJob:
        return await ingest_customers.ingest_customers(
            engine, tenant.id, chunks(), ingest_jobs.UploadFormat.ndjson, keys
        )

    job = anyio.run(run)
    assert job.rows_ok == 3 * ingest_jobs.BATCH_SIZE
    assert seen[0][0] == "running" and seen[-1][1] >= ingest_jobs.BATCH_SIZE


def test_a_stream_broken_mid_upload_keeps_the_batches_written_and_fails_the_job(
    engine: Any, make_tenant: Callable[..., Tenant]
) -> None:
    # Batches are written while the next is read: the one in flight still commits.
    tenant = make_tenant()
    keys = ingest_customers.Keys(b"k" * 32, "")

    async def chunks() -> Any:
        for batch in range(2):
            yield ndjson([{"external_id": f"c-{batch}-{i}"} for i in range(ingest_jobs.BATCH_SIZE)])
        raise ConnectionResetError("client went away")

    async def run() -> ingest_jobs.IngestJob:
        return await ingest_customers.ingest_customers(
            engine, tenant.id, chunks(), ingest_jobs.UploadFormat.ndjson, keys
        )

    with pytest.raises(ConnectionResetError):
        anyio.run(run)
    with Session(engine) as other:
        job = other.exec(select(ingest_jobs.IngestJob).where(col(ingest_jobs.IngestJob.tenant_id) == tenant.id)).one()
        stored = other.exec(select(func.count()).select_from(Customer).where(col(Customer.tenant_id) == tenant.id))
        assert (job.status, job.rows_ok) == ("failed", 2 * ingest_jobs.BATCH_SIZE)
        assert stored.one() == 2 * ingest_jobs.BATCH_SIZE


def test_a_csv_header_the_csv_module_cannot_read_is_refused_not_a_crash(
    client: TestClient, shop: tuple[Tenant, dict[str, str]]
) -> None:
    # Found by the fuzzer (tests/fuzz): a bare carriage return inside the header line was a 500.
    response = client.post("/v1/uploads/customers", content=b"external_id\rs5\n", headers={**shop[1], **CSV})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "Not valid CSV" in response.json()["detail"]


def test_an_upload_is_streamed_even_with_an_idempotency_key_which_it_does_not_need(
    client: TestClient, shop: tuple[Tenant, dict[str, str]], session: Session
) -> None:
    # The key used to be claimed, which read the whole body into memory to fingerprint it first.
    tenant, headers = shop
    keyed = {**headers, "Idempotency-Key": "nightly-customers"}
    first = upload(client, keyed, ndjson([{"external_id": "c-1"}]))
    second = upload(client, keyed, ndjson([{"external_id": "c-2"}]))  # not a 409 idempotency_key_reused
    assert first["id"] != second["id"] and count(session, tenant) == 2
    document = client.get("/openapi.json").json()
    for kind in ("customers", "purchases", "consent-events"):
        parameters = document["paths"][f"/v1/uploads/{kind}"]["post"].get("parameters", [])
        assert "Idempotency-Key" not in {p["name"] for p in parameters}


def test_a_line_with_a_nul_is_a_row_error_and_the_rest_is_kept(
    client: TestClient, shop: tuple[Tenant, dict[str, str]], session: Session
) -> None:
    tenant, headers = shop
    rows: list[Any] = [
        {"external_id": "c-0", "email": "zero@example.com"},
        b'{"external_id": "c-1", "email": "one\\u0000@example.com"}',
        {"external_id": "c-2"},
    ]
    job = upload(client, headers, ndjson(rows))
    assert (job["status"], job["rows_ok"], job["rows_failed"]) == ("done", 2, 1)
    assert (job["errors"][0]["line"], job["errors"][0]["field"]) == (2, "email")
    assert "U+0000" in job["errors"][0]["message"]
    csv = b"external_id,email\nc-3,three@example.com\nc-4,four\x00@example.com\nc-5,\n"
    job = upload(client, headers, csv, CSV)
    assert (job["rows_ok"], job["rows_failed"], job["errors"][0]["line"]) == (2, 1, 3)
    assert count(session, tenant) == 4
