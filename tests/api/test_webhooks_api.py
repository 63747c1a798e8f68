"""Webhook endpoints over the API: secret shown once, rotation, the delivery log, replays, scopes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import respx
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select
from standardwebhooks import Webhook

from partners import worker
from partners.deliveries import WebhookDelivery
from partners.outbox import OutboxEvent
from partners.retailers import Tenant
from partners.settings import Settings
from tests.factories_webhooks import PARTNER_URL, fake_resolver
from tests.flows import bearer

ENDPOINTS = "/v1/webhook-endpoints"


def _create(client: TestClient, token: str, **overrides: Any) -> httpx.Response:
    body = {"url": PARTNER_URL, "events": ["offer.*", "consent.withdrawn"], "description": "main", **overrides}
    return client.post(ENDPOINTS, json=body, headers=bearer(token))


def assert_problem(response: httpx.Response, status: int, code: str, param: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    if param is not None:
        assert response.json()["param"] == param


def test_create_shows_the_secret_once_and_lists_without_it(client: TestClient, token_for: Callable[..., str]) -> None:
    token = token_for(["webhooks:write"])
    created = _create(client, token)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"].startswith("whe_") and body["secret"].startswith("whsec_")
    assert body["events"] == ["consent.withdrawn", "offer.*"]
    assert (body["enabled"], body["disabled_reason"], body["previous_secret_expires_at"]) == (True, None, None)
    one = client.get(f"{ENDPOINTS}/{body['id']}", headers=bearer(token))
    listed = client.get(ENDPOINTS, headers=bearer(token))
    assert one.status_code == listed.status_code == 200
    assert [e["id"] for e in listed.json()["data"]] == [body["id"]]
    for response in (one, listed):
        assert body["secret"] not in response.text and "secret_encrypted" not in response.text


def test_bad_urls_and_unknown_events_are_refused(client: TestClient, token_for: Callable[..., str]) -> None:
    token = token_for(["webhooks:write"])
    assert_problem(_create(client, token, url="https://10.0.0.7/hook"), 422, "invalid", "url")
    assert_problem(_create(client, token, url="https://169.254.169.254/latest"), 422, "invalid", "url")
    assert_problem(_create(client, token, url="ftp://hooks.partner.example/"), 422, "invalid", "url")
    assert_problem(_create(client, token, events=["offer.*", "offer.exploded"]), 422, "invalid", "events[1]")
    assert_problem(_create(client, token, events=[]), 422, "validation_error")
    assert_problem(_create(client, token, secret="mine"), 422, "validation_error")


def test_the_scope_is_required(client: TestClient, token_for: Callable[..., str]) -> None:
    assert_problem(_create(client, token_for(["offers:write"])), 403, "insufficient_scope")


def test_change_disable_enable_and_delete(client: TestClient, token_for: Callable[..., str]) -> None:
    token = token_for(["webhooks:write"])
    endpoint = _create(client, token).json()
    url = f"{ENDPOINTS}/{endpoint['id']}"
    changed = client.patch(url, json={"events": ["erasure.requested"], "enabled": False}, headers=bearer(token))
    assert changed.status_code == 200, changed.text
    assert changed.json()["events"] == ["erasure.requested"]
    assert (changed.json()["enabled"], changed.json()["disabled_reason"]) == (False, "by_owner")
    enabled = client.patch(url, json={"enabled": True}, headers=bearer(token)).json()
    assert (enabled["enabled"], enabled["disabled_reason"], enabled["disabled_at"]) == (True, None, None)
    assert_problem(client.patch(url, json={"url": "https://[::1]/x"}, headers=bearer(token)), 422, "invalid", "url")
    assert client.delete(url, headers=bearer(token)).status_code == 204
    assert_problem(client.get(url, headers=bearer(token)), 404, "not_found")


def test_rotation_answers_the_new_secret_and_both_sign_during_the_overlap(
    client: TestClient, token_for: Callable[..., str]
) -> None:
    token = token_for(["webhooks:write"])
    endpoint = _create(client, token).json()
    url = f"{ENDPOINTS}/{endpoint['id']}/rotate-secret"
    rotated = client.post(url, json={"overlap_seconds": 3600}, headers=bearer(token))
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != endpoint["secret"]
    expires = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    default = client.post(url, headers=bearer(token))
    assert default.status_code == 200, default.text
    assert_problem(client.post(url, json={"overlap_seconds": -1}, headers=bearer(token)), 422, "validation_error")


def test_the_delivery_log_and_replays(
    client: TestClient,
    token_for: Callable[..., str],
    engine: Engine,
    session: Session,
    worker_settings: Settings,
    make_tenant: Callable[..., Tenant],
    make_event: Callable[..., OutboxEvent],
) -> None:
    shop = make_tenant()
    token = token_for(["webhooks:write"], tenant=shop)
    endpoint = _create(client, token).json()
    event = make_event(shop, "offer.paused")
    with respx.mock(assert_all_called=True) as partner:
        route = partner.post(PARTNER_URL).mock(
            side_effect=[httpx.Response(500, text="try later"), httpx.Response(200, text="thanks")]
        )
        worker.deliver_due(engine, worker_settings, resolver=fake_resolver())
        _make_due(session)
        worker.deliver_due(engine, worker_settings, resolver=fake_resolver())
    ids = {call.request.headers["webhook-id"] for call in route.calls}
    assert ids == {event.id}

    log = client.get(f"{ENDPOINTS}/{endpoint['id']}/deliveries", headers=bearer(token))
    assert log.status_code == 200, log.text
    (delivery,) = log.json()["data"]
    assert (delivery["event_id"], delivery["status"], delivery["attempts"]) == (event.id, "succeeded", 2)
    assert [(a["attempt"], a["status_code"], a["response_excerpt"]) for a in delivery["log"]] == [
        (1, 500, "try later"),
        (2, 200, "thanks"),
    ]
    failed = client.get(f"{ENDPOINTS}/{endpoint['id']}/deliveries?status=failed", headers=bearer(token))
    assert failed.json()["data"] == []

    again = client.post(f"/v1/events/{event.id}/replay", headers=bearer(token))
    assert again.status_code == 200 and again.json() == {"deliveries": 1}
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    window = client.post(f"{ENDPOINTS}/{endpoint['id']}/replay", json={"since": since}, headers=bearer(token))
    assert window.status_code == 200 and window.json() == {"deliveries": 1}
    with respx.mock(assert_all_called=True) as partner:
        route = partner.post(PARTNER_URL).mock(return_value=httpx.Response(204))
        worker.deliver_due(engine, worker_settings, resolver=fake_resolver())
    assert [c.request.headers["webhook-id"] for c in route.calls] == [event.id, event.id]
    for call in route.calls:
        Webhook(endpoint["secret"]).verify(call.request.content, dict(call.request.headers))


def test_replays_are_checked(client: TestClient, token_for: Callable[..., str]) -> None:
    token = token_for(["webhooks:write"])
    endpoint = _create(client, token).json()
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    replay = f"{ENDPOINTS}/{endpoint['id']}/replay"
    assert_problem(client.post(replay, json={"since": future}, headers=bearer(token)), 422, "invalid", "since")
    assert_problem(
        client.post(replay, json={"since": "2025-01-01T00:00:00"}, headers=bearer(token)), 422, "validation_error"
    )
    assert_problem(client.post("/v1/events/evt_nope/replay", headers=bearer(token)), 404, "not_found", "event_id")


def test_an_idempotent_retry_of_create_makes_one_endpoint(client: TestClient, token_for: Callable[..., str]) -> None:
    token = token_for(["webhooks:write"])
    headers = {**bearer(token), "Idempotency-Key": "create-hook-1"}
    body = {"url": PARTNER_URL, "events": ["offer.*"]}
    first = client.post(ENDPOINTS, json=body, headers=headers)
    second = client.post(ENDPOINTS, json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert first.json()["id"] == second.json()["id"]
    assert len(client.get(ENDPOINTS, headers=bearer(token)).json()["data"]) == 1


def _make_due(session: Session) -> None:
    """Move every pending delivery's next attempt to now (instead of waiting out the backoff)."""
    session.expire_all()
    for row in session.exec(select(WebhookDelivery).where(WebhookDelivery.status == "pending")).all():
        row.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(row)
    session.commit()
