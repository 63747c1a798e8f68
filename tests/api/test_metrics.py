"""GET /metrics: the numbers move as the service works, by route template, and show no tenant's data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, update
from sqlmodel import Session

from api.app import create_app
from partners import deliveries
from partners.db import utcnow
from partners.metrics import sample_value
from partners.outbox import OutboxEvent
from partners.retailers import Tenant
from partners.settings import Settings, SettingsError
from tests.factories_exchange import Story
from tests.flows import bearer

REQUESTS = "partnerloop_http_requests_total"
LATENCY_COUNT = "partnerloop_http_request_duration_seconds_count"
DECISIONS = "partnerloop_exchange_decisions_total"


def scrape(client: TestClient, settings: Settings) -> str:
    assert settings.metrics_token is not None
    response = client.get("/metrics", headers=bearer(settings.metrics_token.get_secret_value()))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


def test_a_request_moves_its_route_templates_counter_by_one(client: TestClient, settings: Settings) -> None:
    route = {"method": "GET", "route": "/v1/offers/{offer_id}", "status": "401"}
    before = scrape(client, settings)
    assert client.get("/v1/offers/off_0123456789abcdef").status_code == 401
    after = scrape(client, settings)
    assert sample_value(after, REQUESTS, route) - sample_value(before, REQUESTS, route) == 1
    assert sample_value(after, LATENCY_COUNT, route) - sample_value(before, LATENCY_COUNT, route) == 1
    # The raw path (with its id) is never a label: a series per object would leak ids and grow without end.
    assert "off_0123456789abcdef" not in after


def test_paths_no_route_matches_share_one_label(client: TestClient, settings: Settings) -> None:
    for path in ("/no/such/thing", "/wp-admin.php", "/v1/nothing-here"):
        assert client.get(path).status_code == 404
    text = scrape(client, settings)
    assert sample_value(text, REQUESTS, {"route": "unmatched", "status": "404"}) == 3
    assert "wp-admin" not in text and "nothing-here" not in text


def test_the_scrape_counts_itself_after_it_answered(client: TestClient, settings: Settings) -> None:
    first = scrape(client, settings)
    second = scrape(client, settings)
    scrapes = {"route": "/metrics", "status": "200"}
    assert sample_value(second, REQUESTS, scrapes) == sample_value(first, REQUESTS, scrapes) + 1


def test_exchange_decisions_are_counted_by_reason(
    client: TestClient, settings: Settings, exchange_story: Callable[..., Story], token_for: Callable[..., str]
) -> None:
    story = exchange_story(pool=3)
    token = token_for(["exchange:read"], tenant=story.setup.host)
    before = scrape(client, settings)
    for customer in ("dog-owner-1", "a-stranger"):
        answer = client.post(
            "/v1/exchange",
            json={"customer_external_id": customer, "placement": "order_confirmation"},
            headers=bearer(token),
        )
        assert answer.status_code == 200, answer.text
    after = scrape(client, settings)

    def moved(reason: str) -> float:
        return sample_value(after, DECISIONS, {"reason": reason}) - sample_value(before, DECISIONS, {"reason": reason})

    assert (moved("shown"), moved("unknown_customer")) == (1, 1)
    assert sample_value(after, REQUESTS, {"route": "/v1/exchange", "status": "200"}) == 2
    # Nothing of either tenant, nor the customer ids the host sent.
    for secret in (story.setup.host.id, story.setup.offering.id, story.offer.id, "dog-owner-1", "a-stranger"):
        assert secret not in after


def test_the_outbox_backlog_is_read_at_scrape_time(
    client: TestClient,
    settings: Settings,
    session: Session,
    engine: Engine,
    make_endpoint: Callable[..., object],
    make_event: Callable[..., OutboxEvent],
    make_tenant: Callable[..., Tenant],
) -> None:
    tenant = make_tenant()
    make_endpoint(tenant)
    for _ in range(2):
        make_event(tenant)
    an_hour_ago = utcnow() - timedelta(hours=1)
    session.exec(update(OutboxEvent).values(created_at=an_hour_ago))
    session.commit()
    text = scrape(client, settings)
    assert sample_value(text, "partnerloop_outbox_pending_events") == 2
    assert 3500 < sample_value(text, "partnerloop_outbox_oldest_pending_event_age_seconds") < 3700
    assert sample_value(text, "partnerloop_webhook_pending_deliveries") == 0

    deliveries.dispatch(session, now=utcnow())
    session.commit()
    text = scrape(client, settings)
    assert sample_value(text, "partnerloop_outbox_pending_events") == 0
    assert sample_value(text, "partnerloop_outbox_oldest_pending_event_age_seconds") == 0
    assert sample_value(text, "partnerloop_webhook_pending_deliveries") == 2
    assert sample_value(text, "partnerloop_webhook_due_deliveries") == 2
    assert tenant.id not in text


def test_a_tenants_token_or_none_does_not_open_metrics(
    client: TestClient, settings: Settings, token_for: Callable[..., str]
) -> None:
    for headers in ({}, bearer(token_for()), bearer("not-the-scrapers-token"), {"Authorization": "Basic eDp5"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "partnerloop_" not in response.text


def test_without_a_scraper_token_metrics_are_off(settings: Settings, engine: Engine) -> None:
    app: FastAPI = create_app(settings.model_copy(update={"metrics_token": None}), engine)
    with TestClient(app) as client:
        response = client.get("/metrics", headers=bearer("anything"))
    assert response.status_code == 404
    assert response.json()["code"] == "metrics_disabled"
    assert "PARTNERLOOP_METRICS_TOKEN" in response.json()["detail"]


def test_each_app_counts_alone(settings: Settings, engine: Engine) -> None:
    # No module-level registry: two apps in one process (as in tests) do not see each other's requests.
    token = SecretStr("t" * 40)
    apps = [create_app(settings.model_copy(update={"metrics_token": token}), engine) for _ in range(2)]
    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
        first.get("/healthz")
        text = second.get("/metrics", headers=bearer(token.get_secret_value())).text
    assert sample_value(text, REQUESTS, {"route": "/healthz"}) == 0


@pytest.mark.parametrize("token", ["short", "x" * 31])
def test_production_refuses_a_weak_scraper_token(settings: Settings, token: str) -> None:
    values = settings.model_dump() | {
        "environment": "production",
        "base_url": "https://partnerloop.example",
        "database_url": "postgresql://db.example/partnerloop",
        "metrics_token": token,
    }
    values = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in values.items()}
    with pytest.raises(SettingsError, match="METRICS_TOKEN"):
        Settings(**values)
