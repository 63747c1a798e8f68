"""The OpenAPI document tells the truth about security and errors: every route is in it (bar the
HTML pages), every operation but the public ones requires a token, every error is problem+json."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Route

from tests.flows import bearer

SCHEME = "partnerloop"
# Operations anyone may call: metadata, keys, health, OAuth itself, sign-up and invitations.
PUBLIC = {
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/.well-known/oauth-authorization-server"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/oauth/authorize"),
    ("post", "/oauth/token"),
    ("post", "/oauth/revoke"),
    ("post", "/oauth/introspect"),
    ("post", "/v1/tenants"),
    ("post", "/v1/invitations/accept"),
}
# Operations for the operator's tools, opened by their own token (never a tenant's): the scrape.
OPERATOR = {("get", "/metrics"): "metrics"}
# Pages for browsers, not API operations: the docs, the staff login, customers' preference pages.
NOT_IN_THE_DOCUMENT = {
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/login",
    "/logout",
    "/preferences/{token}",
    "/surveys/{token}",  # the customer's survey page, opened from a signed link
}


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): spec
        for path, item in document["paths"].items()
        for method, spec in item.items()
        if method in {"get", "put", "post", "patch", "delete"}
    }


def served_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, through included routers (which FastAPI keeps nested)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from served_routes(included.routes)
        else:
            yield route


def test_every_route_is_in_the_document_or_a_known_page(app: FastAPI) -> None:
    documented = {path for _, path in operations(app.openapi())}
    served = {r.path for r in served_routes(app.routes) if isinstance(r, Route)}
    assert len(served) > 50, "the walk over the routes found almost nothing"
    assert served - documented == NOT_IN_THE_DOCUMENT
    hidden = {r.path for r in served_routes(app.routes) if isinstance(r, APIRoute) and not r.include_in_schema}
    assert hidden <= NOT_IN_THE_DOCUMENT


def test_only_the_public_operations_go_without_the_security_scheme(app: FastAPI) -> None:
    unsecured = {
        key for key, spec in operations(app.openapi()).items() if not any(SCHEME in r for r in spec.get("security", []))
    }
    assert unsecured == PUBLIC | set(OPERATOR)


def test_operator_operations_declare_their_own_scheme_and_not_the_tenants(app: FastAPI) -> None:
    document = app.openapi()
    for (method, path), scheme in OPERATOR.items():
        spec = operations(document)[(method, path)]
        assert spec["security"] == [{scheme: []}], (method, path)
        assert document["components"]["securitySchemes"][scheme] == {
            "type": "http",
            "scheme": "bearer",
            "description": document["components"]["securitySchemes"][scheme]["description"],
        }
        assert "WWW-Authenticate" in spec["responses"]["401"]["headers"]


def test_every_operation_declares_its_errors_as_problem_json(app: FastAPI) -> None:
    document = app.openapi()
    assert document["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status", "detail", "code"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for (method, path), spec in operations(document).items():
        responses = spec["responses"]
        secured = (method, path) not in PUBLIC and (method, path) not in OPERATOR
        if secured:
            assert {"401", "403", "429"} <= set(responses), (method, path)
            assert "WWW-Authenticate" in responses["401"]["headers"]
            assert "Retry-After" in responses["429"]["headers"]
        if path.startswith("/v1/"):
            assert {"404", "422"} <= set(responses), (method, path)
        if "requestBody" in spec and not path.startswith("/oauth/"):
            assert "413" in responses, (method, path)
        for status, response in responses.items():
            if status[0] in "45" and not path.startswith("/oauth/"):
                assert list(response["content"]) == ["application/problem+json"], (method, path, status)


def test_a_wrong_method_names_every_method_of_the_path(client: TestClient, token_for: Callable[..., str]) -> None:
    # Starlette named only the first matching route's methods (found by the fuzzer).
    response = client.request("OPTIONS", "/v1/offers/off_x", headers=bearer(token_for()))
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert {"GET", "PATCH"} <= {m.strip() for m in response.headers["allow"].split(",")}
    assert response.json()["detail"] == "OPTIONS is not allowed on /v1/offers/off_x."


def test_allow_follows_the_most_specific_documented_path(client: TestClient, token_for: Callable[..., str]) -> None:
    # /v1/staff/invitations also matches /v1/staff/{user_id} (PATCH): the document's path is the literal one.
    response = client.request("OPTIONS", "/v1/staff/invitations", headers=bearer(token_for()))
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_every_success_answer_with_a_body_is_documented_with_its_schema(app: FastAPI) -> None:
    # Found building the SDK: a replayed purchase, consent event or redemption (200), and a created
    # customer or offer (201), answered bodies the document did not describe.
    for (method, path), spec in operations(app.openapi()).items():
        for status, response in spec["responses"].items():
            if status in ("200", "201") and not path.startswith(("/oauth/", "/.well-known/")):
                assert "content" in response, (method, path, status)
