"""Idempotency-Key on POST: replay, conflict, in-progress, expiry and per-caller scoping."""

import asyncio
from collections.abc import Callable
from datetime import timedelta

import anyio
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from api.idempotency import heartbeat
from partners import idempotency
from partners.clients import ApiClient
from partners.db import utcnow
from partners.idempotency import ABANDONED_AFTER, HEARTBEAT_EVERY, Claim, IdempotencyRecord
from partners.retailers import Tenant
from partners.settings import Settings


def _headers(token: str, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def _clients_of(session: Session, tenant_id: str) -> int:
    session.expire_all()
    return len(session.exec(select(ApiClient).where(ApiClient.tenant_id == tenant_id)).all())


def test_same_key_and_body_replays_the_first_answer(
    client: TestClient, session: Session, make_tenant: Callable[..., Tenant], token_for: Callable[..., str]
) -> None:
    tenant = make_tenant()
    token = token_for(tenant=tenant)
    body = {"name": "sync job", "scopes": ["offers:read"]}
    first = client.post("/v1/clients", json=body, headers=_headers(token, "key-1"))
    second = client.post("/v1/clients", json=body, headers=_headers(token, "key-1"))
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert _clients_of(session, tenant.id) == 2  # the token's own client and one created


def test_same_key_with_another_body_is_a_conflict(
    client: TestClient, session: Session, make_tenant: Callable[..., Tenant], token_for: Callable[..., str]
) -> None:
    tenant = make_tenant()
    token = token_for(tenant=tenant)
    client.post("/v1/clients", json={"name": "a", "scopes": ["offers:read"]}, headers=_headers(token, "k"))
    response = client.post("/v1/clients", json={"name": "b", "scopes": ["offers:read"]}, headers=_headers(token, "k"))
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert response.json()["param"] == "Idempotency-Key"
    assert _clients_of(session, tenant.id) == 2


def test_without_a_key_each_post_acts(
    client: TestClient, session: Session, make_tenant: Callable[..., Tenant], token_for: Callable[..., str]
) -> None:
    tenant = make_tenant()
    token = token_for(tenant=tenant)
    for _ in range(2):
        client.post("/v1/clients", json={"name": "a", "scopes": ["offers:read"]}, headers=_headers(token))
    assert _clients_of(session, tenant.id) == 3


def test_keys_are_scoped_to_the_caller(
    client: TestClient, session: Session, make_tenant: Callable[..., Tenant], token_for: Callable[..., str]
) -> None:
    first, second = make_tenant(), make_tenant()
    body = {"name": "a", "scopes": ["offers:read"]}
    a = client.post("/v1/clients", json=body, headers=_headers(token_for(tenant=first), "shared"))
    b = client.post("/v1/clients", json=body, headers=_headers(token_for(tenant=second), "shared"))
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    assert "idempotent-replayed" not in b.headers
    # Another client of the same tenant is another caller too.
    c = client.post("/v1/clients", json=body, headers=_headers(token_for(tenant=first), "shared"))
    assert c.json()["id"] != a.json()["id"]


def test_expired_keys_are_forgotten(
    client: TestClient, session: Session, make_tenant: Callable[..., Tenant], token_for: Callable[..., str]
) -> None:
    tenant = make_tenant()
    token = token_for(tenant=tenant)
    body = {"name": "a", "scopes": ["offers:read"]}
    first = client.post("/v1/clients", json=body, headers=_headers(token, "old"))
    record = session.exec(select(IdempotencyRecord).where(IdempotencyRecord.key == "old")).one()
    record.expires_at = utcnow() - timedelta(seconds=1)
    session.add(record)
    session.commit()
    again = client.post("/v1/clients", json=body, headers=_headers(token, "old"))
    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]


def test_a_request_still_running_gets_409_with_retry_after(
    client: TestClient, session: Session, make_tenant: Callable[..., Tenant], token_for: Callable[..., str]
) -> None:
    tenant = make_tenant()
    token = token_for(tenant=tenant)
    body = {"name": "a", "scopes": ["offers:read"]}
    client.post("/v1/clients", json=body, headers=_headers(token, "busy"))
    record = session.exec(select(IdempotencyRecord).where(IdempotencyRecord.key == "busy")).one()
    record.status_code = None  # as if the first request had not finished yet
    session.add(record)
    session.commit()
    response = client.post("/v1/clients", json=body, headers=_headers(token, "busy"))
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_request_in_progress"
    assert response.headers["retry-after"] == "1"


def test_a_refused_request_is_not_stored_so_a_corrected_retry_runs(
    client: TestClient, session: Session, make_tenant: Callable[..., Tenant], token_for: Callable[..., str]
) -> None:
    tenant = make_tenant()
    token = token_for(scopes=["clients:write"], tenant=tenant)
    refused = client.post("/v1/clients", json={"name": "a", "scopes": ["nope:x"]}, headers=_headers(token, "k2"))
    assert refused.status_code == 422
    assert session.exec(select(IdempotencyRecord).where(IdempotencyRecord.key == "k2")).first() is None
    fixed = client.post("/v1/clients", json={"name": "a", "scopes": ["clients:write"]}, headers=_headers(token, "k2"))
    assert fixed.status_code == 201


def test_an_overlong_key_is_refused(client: TestClient, token_for: Callable[..., str]) -> None:
    response = client.post(
        "/v1/clients", json={"name": "a", "scopes": ["offers:read"]}, headers=_headers(token_for(), "k" * 256)
    )
    assert response.status_code == 422
    assert response.json()["param"] == "idempotency-key"


def test_keys_are_kept_24_hours_by_default(
    client: TestClient,
    session: Session,
    settings: Settings,
    make_tenant: Callable[..., Tenant],
    token_for: Callable[..., str],
) -> None:
    assert Settings.model_fields["idempotency_ttl_seconds"].default == 24 * 3600
    assert settings.idempotency_ttl_seconds == 24 * 3600  # the tests run on the default
    tenant = make_tenant()
    body = {"name": "sync job", "scopes": ["offers:read"]}
    assert client.post("/v1/clients", json=body, headers=_headers(token_for(tenant=tenant), "day")).status_code == 201
    session.expire_all()
    record = session.exec(select(IdempotencyRecord).where(IdempotencyRecord.key == "day")).one()
    assert record.expires_at - record.created_at == timedelta(hours=24)


def test_public_sign_up_does_not_honour_a_key_but_a_retry_is_safe(client: TestClient, session: Session) -> None:
    body = {"organization": "Retry Shop", "email": "retry@shop.example", "password": "a long enough password"}
    headers = {"Idempotency-Key": "signup-1"}
    assert client.post("/v1/tenants", json=body, headers=headers).status_code == 201
    again = client.post("/v1/tenants", json=body, headers=headers)
    # Not a replay (no caller to scope the key to): the retry is refused because the login is taken.
    assert again.status_code == 409
    assert "idempotent-replayed" not in again.headers
    session.expire_all()
    assert len(session.exec(select(Tenant).where(Tenant.name == "Retry Shop")).all()) == 1


def test_the_heartbeat_renews_the_claim_until_cancelled(
    engine: Engine, session: Session, make_tenant: Callable[..., Tenant]
) -> None:
    claim = Claim(make_tenant().id, "cli_x", "beating")
    idempotency.claim(session, claim, "h1", now=utcnow() - timedelta(minutes=20), ttl=timedelta(hours=24))
    session.commit()

    async def run_a_while() -> None:
        beating = asyncio.create_task(heartbeat(engine, claim, every=0.05))
        await asyncio.sleep(0.5)
        beating.cancel()

    anyio.run(run_a_while)
    session.expire_all()
    record = session.get(IdempotencyRecord, (claim.tenant_id, claim.caller_id, claim.key))
    assert record is not None and record.renewed_at is not None
    assert utcnow() - record.renewed_at < timedelta(seconds=5)
    assert HEARTBEAT_EVERY * 3 < ABANDONED_AFTER  # beats to spare before a takeover
