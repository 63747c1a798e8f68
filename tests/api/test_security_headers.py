"""Security headers on every answer: nosniff everywhere, no framing of HTML pages, HSTS in
production only, no server banner; CORS for the configured origins only; the body cap."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api import cli
from api.app import create_app
from api.preference_links import issue_link
from partners.customers import Customer
from partners.retailers import Tenant
from partners.settings import Environment, Settings
from tests.flows import authorize_url, bearer, pkce_pair

ALLOWED_ORIGIN = "https://admin.shop.example"


def html_pages(settings: Settings, make_customer: Callable[..., Customer]) -> list[str]:
    customer = make_customer()
    preferences = issue_link(settings, customer.tenant_id, customer.id, 30).url.removeprefix("http://testserver")
    return ["/login", "/docs", "/redoc", "/docs/oauth2-redirect", preferences, "/oauth/authorize?client_id=nobody"]


def test_every_html_page_refuses_framing(
    client: TestClient, settings: Settings, make_customer: Callable[..., Customer]
) -> None:
    for path in html_pages(settings, make_customer):
        response = client.get(path)
        assert response.headers["content-type"].startswith("text/html"), path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
        assert response.headers["x-frame-options"] == "DENY", path
        assert response.headers["x-content-type-options"] == "nosniff", path


@pytest.fixture
def crashing_app(app: FastAPI) -> FastAPI:
    @app.get("/v1/probe/crash")
    def crash() -> None:
        raise RuntimeError("boom")

    return app


def test_every_answer_is_nosniff_and_names_no_server(
    crashing_app: FastAPI, token_for: Callable[..., str], client: TestClient
) -> None:
    token = token_for()
    answers = {
        "json": client.get("/v1/tenant", headers=bearer(token)),
        "problem": client.get("/v1/offers/nope", headers=bearer(token)),
        "unauthenticated": client.get("/v1/tenant"),
        "oauth error": client.post("/oauth/token", data={"grant_type": "password"}),
        "too large": client.post("/v1/offers", content=b"x" * (70 * 1024), headers=bearer(token)),
        "crash": client.get("/v1/probe/crash"),
        "openapi": client.get("/openapi.json"),
    }
    assert answers["too large"].status_code == 413
    assert answers["crash"].status_code == 500
    for name, response in answers.items():
        assert response.headers["x-content-type-options"] == "nosniff", name
        assert response.headers["referrer-policy"] == "no-referrer", name
        assert "server" not in response.headers, name
        assert "strict-transport-security" not in response.headers, name  # development serves http


def test_production_sends_hsts_everywhere(settings: Settings, engine: Engine) -> None:
    # model_copy skips the production checks (https, PostgreSQL) that do not matter to headers.
    production = settings.model_copy(update={"environment": Environment.production})
    with TestClient(create_app(production, engine), raise_server_exceptions=False) as client:
        for path in ("/healthz", "/login", "/v1/tenant", "/nowhere"):
            hsts = client.get(path).headers["strict-transport-security"]
            assert hsts.startswith("max-age=") and int(hsts.split("=")[1].split(";")[0]) >= 31536000, path
            assert "includeSubDomains" in hsts


def test_the_server_is_started_without_a_version_banner(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    # uvicorn adds `Server: uvicorn` itself, below the app: only its own switch turns it off.
    seen: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: seen.update(kwargs))
    monkeypatch.setattr(cli, "upgrade", lambda url: None)
    monkeypatch.setenv("PARTNERLOOP_BASE_URL", settings.base_url)
    cli.cmd_serve(settings, argparse.Namespace(host="127.0.0.1", port=8000, workers=1, demo=False))
    assert seen["server_header"] is False


# --- CORS ----------------------------------------------------------------------------------


@pytest.fixture
def cors_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    configured = settings.model_copy(update={"cors_origins": [ALLOWED_ORIGIN]})
    with TestClient(create_app(configured, engine), raise_server_exceptions=False) as client:
        yield client


def preflight(client: TestClient, origin: str) -> Any:
    return client.options(
        "/v1/offers",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )


def test_cors_answers_the_configured_origin(cors_client: TestClient, token_for: Callable[..., str]) -> None:
    allowed = preflight(cors_client, ALLOWED_ORIGIN)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in allowed.headers["access-control-allow-methods"]
    simple = cors_client.get("/v1/tenant", headers={"Origin": ALLOWED_ORIGIN, **bearer(token_for())})
    assert simple.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "retry-after" in simple.headers["access-control-expose-headers"].lower()


def test_cors_ignores_other_origins(cors_client: TestClient, token_for: Callable[..., str]) -> None:
    refused = preflight(cors_client, "https://evil.example")
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    simple = cors_client.get("/v1/tenant", headers={"Origin": "https://evil.example", **bearer(token_for())})
    assert "access-control-allow-origin" not in simple.headers


def test_without_configured_origins_no_cors_at_all(client: TestClient) -> None:
    assert "access-control-allow-origin" not in preflight(client, ALLOWED_ORIGIN).headers


# --- the body cap ----------------------------------------------------------------------------


def test_an_oversize_body_is_a_413_problem_before_anything_reads_it(
    client: TestClient, token_for: Callable[..., str], settings: Settings
) -> None:
    body = json.dumps({"title": "x" * settings.max_body_bytes}).encode()
    response = client.post(
        "/v1/offers", content=body, headers={**bearer(token_for()), "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "payload_too_large"


def test_uploads_stream_bodies_far_over_the_cap(
    client: TestClient, token_for: Callable[..., str], make_tenant: Callable[..., Tenant], settings: Settings
) -> None:
    lines = b"".join(json.dumps({"external_id": f"c-{n:06d}"}).encode() + b"\n" for n in range(8000))
    assert len(lines) > 3 * settings.max_body_bytes

    def chunks() -> Iterator[bytes]:  # streamed, as `partnerloop upload` sends it
        for start in range(0, len(lines), 16 * 1024):
            yield lines[start : start + 16 * 1024]

    response = client.post(
        "/v1/uploads/customers",
        content=chunks(),
        headers={**bearer(token_for(["customers:write"])), "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["rows_ok"] == 8000


def test_the_authorize_page_refuses_framing_on_the_way_to_login(client: TestClient) -> None:
    _, challenge = pkce_pair()
    response = client.get(authorize_url(challenge), follow_redirects=True)
    assert response.url.path == "/login"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
