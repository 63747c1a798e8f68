"""The worker counts every webhook attempt by what became of its delivery (partners.worker + metrics)."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable

import httpx
import respx
from sqlalchemy import Engine, update
from sqlmodel import Session

from api.cli import serve_worker_metrics
from partners import worker
from partners.db import utcnow
from partners.deliveries import WebhookDelivery
from partners.metrics import Metrics, sample_value
from partners.outbox import OutboxEvent
from partners.retailers import Tenant
from partners.settings import Settings
from partners.webhooks import IssuedEndpoint
from tests.factories_webhooks import PARTNER_URL, fake_resolver
from tests.fuzz.__main__ import free_port

ATTEMPTS = "partnerloop_webhook_attempts_total"


def attempts(metrics: Metrics, outcome: str) -> float:
    return metrics.registry.get_sample_value(ATTEMPTS, {"outcome": outcome}) or 0.0


def _make_due(session: Session) -> None:
    session.exec(update(WebhookDelivery).values(next_attempt_at=utcnow()))
    session.commit()


def test_a_failure_then_a_success_are_counted_as_retrying_then_succeeded(
    engine: Engine,
    session: Session,
    worker_settings: Settings,
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
    make_event: Callable[..., OutboxEvent],
) -> None:
    tenant = make_tenant()
    make_endpoint(tenant)
    make_event(tenant)
    metrics = Metrics()
    with respx.mock(assert_all_called=True) as partner:
        partner.post(PARTNER_URL).mock(side_effect=[httpx.Response(500), httpx.Response(200)])
        worker.deliver_due(engine, worker_settings, resolver=fake_resolver(), metrics=metrics)
        assert (attempts(metrics, "retrying"), attempts(metrics, "succeeded")) == (1, 0)
        _make_due(session)
        worker.deliver_due(engine, worker_settings, resolver=fake_resolver(), metrics=metrics)
    assert (attempts(metrics, "retrying"), attempts(metrics, "succeeded")) == (1, 1)
    assert metrics.registry.get_sample_value("partnerloop_webhook_attempt_duration_seconds_count") == 2


def test_a_gone_endpoint_counts_as_failed_and_its_queue_as_nothing_more(
    engine: Engine,
    session: Session,
    worker_settings: Settings,
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
    make_event: Callable[..., OutboxEvent],
) -> None:
    tenant = make_tenant()
    make_endpoint(tenant)
    make_event(tenant)
    make_event(tenant)
    metrics = Metrics()
    with respx.mock() as partner:
        partner.post(PARTNER_URL).mock(return_value=httpx.Response(410))
        worker.deliver_due(engine, worker_settings, resolver=fake_resolver(), metrics=metrics)
    # Both were leased in one batch: both answered 410; the endpoint is disabled once.
    assert attempts(metrics, "failed") + attempts(metrics, "cancelled") == 2
    assert attempts(metrics, "failed") >= 1
    assert attempts(metrics, "succeeded") == 0


def test_the_workers_listener_serves_its_counts(
    engine: Engine,
    worker_settings: Settings,
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
    make_event: Callable[..., OutboxEvent],
) -> None:
    tenant = make_tenant()
    make_endpoint(tenant)
    make_event(tenant)
    metrics = Metrics()
    port = free_port()
    listener = serve_worker_metrics(metrics, "127.0.0.1", port)
    try:
        with respx.mock() as partner:
            partner.post(PARTNER_URL).mock(return_value=httpx.Response(204))
            worker.deliver_due(engine, worker_settings, resolver=fake_resolver(), metrics=metrics)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        listener.shutdown()
        listener.server_close()
    assert sample_value(text, ATTEMPTS, {"outcome": "succeeded"}) == 1
    assert tenant.id not in text  # the outcome only, never whose delivery it was
