"""Every error is problem+json with status, title, detail and the offending field."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, Field

from partners.errors import Conflict


class Widget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    size: int = Field(ge=1)


@pytest.fixture
def probe(app: FastAPI) -> Iterator[TestClient]:
    @app.post("/probe/widgets", status_code=201)
    def create_widget(widget: Widget) -> Widget:
        return widget

    @app.post("/probe/conflict")
    def conflict() -> None:
        raise Conflict("It clashes.", param="name")

    @app.get("/probe/crash")
    def crash() -> None:
        raise RuntimeError("boom: secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith("/" + code)
    assert body["title"] and body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def test_unknown_route_is_a_404_problem(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/nothing-here"), 404, "not_found")
    assert body["instance"] == "/v1/nothing-here"


def test_wrong_method_is_a_405_problem_with_allow(client: TestClient) -> None:
    response = client.delete("/healthz")
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


def test_malformed_json_is_a_400_problem(probe: TestClient) -> None:
    response = probe.post("/probe/widgets", content=b'{"name": "a",', headers={"content-type": "application/json"})
    body = assert_problem(response, 400, "malformed_json")
    assert body["param"] == "body"


def test_wrong_type_names_the_field(probe: TestClient) -> None:
    body = assert_problem(probe.post("/probe/widgets", json={"name": "a", "size": "big"}), 422, "validation_error")
    assert body["param"] == "size"
    assert body["errors"][0]["param"] == "size"


def test_unknown_fields_are_refused(probe: TestClient) -> None:
    body = assert_problem(
        probe.post("/probe/widgets", json={"name": "a", "size": 1, "colour": "red"}), 422, "validation_error"
    )
    assert body["param"] == "colour"


def test_oversize_body_is_a_413_problem(probe: TestClient) -> None:
    response = probe.post("/probe/widgets", json={"name": "x" * 70_000, "size": 1})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "payload_too_large"


def test_oversize_chunked_body_is_a_413_problem(probe: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'", "size": 1}'

    response = probe.post("/probe/widgets", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_domain_errors_map_to_their_status(probe: TestClient) -> None:
    body = assert_problem(probe.post("/probe/conflict"), 409, "conflict")
    assert body["param"] == "name"
    assert body["detail"] == "It clashes."


def test_unexpected_errors_are_a_500_problem_without_internals(probe: TestClient) -> None:
    response = probe.get("/probe/crash")
    body = assert_problem(response, 500, "internal_error")
    assert "boom" not in response.text
    assert "request_id" in body
