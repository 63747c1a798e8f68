from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine, make_url

from api.app import create_app
from partners.db import make_engine
from partners.migrate import upgrade
from partners.settings import Settings

# The migration before head: a replica started from a newer image than the schema it finds.
BEHIND_HEAD = "0012"


def test_healthz_answers_when_the_process_is_up(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_the_database(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def assert_not_ready(response: httpx.Response, needle: str) -> None:
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["code"]) == (503, "unavailable")
    assert needle in body["detail"]


def test_readyz_is_503_when_the_database_does_not_answer(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    if engine.dialect.name == "postgresql":
        # Nothing listens on port 1: the connection is refused at once.
        unreachable = make_url(str(engine.url)).set(port=1).render_as_string(hide_password=False)
    else:
        unreachable = f"sqlite:///{tmp_path / 'no-such-directory' / 'partnerloop.db'}"
    dead = make_engine(unreachable)
    try:
        with TestClient(create_app(settings, dead), raise_server_exceptions=False) as client:
            assert_not_ready(client.get("/readyz"), "does not answer")
            assert client.get("/healthz").status_code == 200  # alive, only not ready
    finally:
        dead.dispose()


def test_readyz_is_503_while_the_schema_is_behind_head(settings: Settings, spare_database_url: str) -> None:
    upgrade(spare_database_url, BEHIND_HEAD)
    behind = make_engine(spare_database_url)
    try:
        with TestClient(create_app(settings, behind), raise_server_exceptions=False) as client:
            assert_not_ready(client.get("/readyz"), "partnerloop db upgrade")
        upgrade(spare_database_url)
        with TestClient(create_app(settings, behind), raise_server_exceptions=False) as client:
            assert client.get("/readyz").status_code == 200
    finally:
        behind.dispose()


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    echoed = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["X-Request-ID"].startswith("req_")


def test_docs_and_openapi_are_served(client: TestClient) -> None:
    assert client.get("/openapi.json").json()["info"]["title"] == "Partnerloop"
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert docs.headers["x-content-type-options"] == "nosniff"
    assert "server" not in docs.headers
