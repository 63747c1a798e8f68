"""Every log line written while serving a request carries its request id, and its tenant once known."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.auth.principal import Authenticated
from api.middleware import log_context
from partners.logs import JsonFormatter
from partners.retailers import Tenant
from tests.flows import bearer

log = logging.getLogger("partnerloop.test")


class Lines(logging.Handler):
    """The JSON lines the service would print (the formatter and context `partnerloop serve` sets up)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter(log_context))
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def of(self, logger: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["logger"] == logger]


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def logging_app(app: FastAPI) -> FastAPI:
    """The app with two routes that log from inside a handler, as domain code does (a sync one runs in a thread)."""

    def sync_handler(caller: Authenticated) -> dict[str, str]:
        log.warning("something worth a line")
        return {"ok": caller.tenant_id}

    async def failing_handler(caller: Authenticated) -> dict[str, str]:
        raise RuntimeError("boom")

    app.add_api_route("/test/logs", sync_handler, methods=["GET"])
    app.add_api_route("/test/fails", failing_handler, methods=["GET"])
    return app


def test_the_access_line_carries_request_id_and_tenant(
    client: TestClient, lines: Lines, token_for: Callable[..., str], make_tenant: Callable[..., Tenant]
) -> None:
    tenant = make_tenant()
    token = token_for(["profile:read"], tenant=tenant)
    lines.lines.clear()
    response = client.get("/v1/tenant", headers=bearer(token) | {"X-Request-ID": "checkout-42"})
    assert response.status_code == 200
    (access,) = lines.of("partnerloop.access")
    assert access["request_id"] == "checkout-42" == response.headers["x-request-id"]
    assert access["tenant_id"] == tenant.id
    assert (access["status"], access["message"]) == (200, "GET /v1/tenant 200")


def test_an_anonymous_request_has_its_id_and_no_tenant(client: TestClient, lines: Lines) -> None:
    response = client.get("/healthz")
    (access,) = lines.of("partnerloop.access")
    assert access["request_id"] == response.headers["x-request-id"]
    assert access["request_id"].startswith("req_")
    assert access.get("tenant_id") is None


def test_a_refused_token_logs_no_tenant(client: TestClient, lines: Lines) -> None:
    client.get("/v1/tenant", headers=bearer("forged"))
    (access,) = lines.of("partnerloop.access")
    assert access["status"] == 401 and access.get("tenant_id") is None


def test_lines_logged_inside_a_handler_carry_both(
    logging_app: FastAPI, lines: Lines, token_for: Callable[..., str], make_tenant: Callable[..., Tenant]
) -> None:
    tenant = make_tenant()
    with TestClient(logging_app, raise_server_exceptions=False) as client:
        token = token_for(tenant=tenant)
        lines.lines.clear()
        ok = client.get("/test/logs", headers=bearer(token))
        failed = client.get("/test/fails", headers=bearer(token))
    assert ok.status_code == 200 and failed.status_code == 500
    (inside,) = lines.of("partnerloop.test")
    assert (inside["request_id"], inside["tenant_id"]) == (ok.headers["x-request-id"], tenant.id)
    (error,) = [line for line in lines.lines if "exception" in line]
    assert (error["request_id"], error["tenant_id"]) == (failed.headers["x-request-id"], tenant.id)
    assert "RuntimeError: boom" in error["exception"]
    assert {line["request_id"] for line in lines.of("partnerloop.access")} == {
        ok.headers["x-request-id"],
        failed.headers["x-request-id"],
    }


def test_no_request_context_leaks_to_lines_outside_requests(client: TestClient, lines: Lines) -> None:
    client.get("/healthz")
    log.warning("between requests")
    (outside,) = lines.of("partnerloop.test")
    assert "request_id" not in outside and "tenant_id" not in outside
