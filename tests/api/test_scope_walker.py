"""Every private operation checks the scope it declares, walked over the OpenAPI document.

For each operation the caller holds a token with every scope there is except the one(s) the
operation declares (all its alternatives, where any one of several opens it), and must get
403 `insufficient_scope` problem+json with the RFC 6750 challenge docs/auth.md shows, before
anything else is looked at. A route added later that forgets its scope, or declares one it
does not check, fails here.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.auth.principal import Authenticated
from partners import scopes as scope_names
from tests.api.walker import OPERATIONS, OPERATOR_OPERATIONS, SECURITY_SCHEME, Operation, is_public
from tests.flows import bearer

PRIVATE = [
    op for op in OPERATIONS if not is_public(op.method, op.path) and (op.method, op.path) not in OPERATOR_OPERATIONS
]


def declared_scopes(op: Operation) -> set[str]:
    """Every scope any of the operation's security alternatives names."""
    return {scope for requirement in op.spec.get("security", []) for scope in requirement.get(SECURITY_SCHEME, [])}


def check_scope_is_enforced(op: Operation, client: TestClient, token_for: Callable[..., str]) -> None:
    """Fail unless `op` declares a scope and refuses a token without it with 403 insufficient_scope."""
    needed = declared_scopes(op)
    assert needed, f"{op.name} declares no scope in OpenAPI: give it one (api/auth/principal.py aliases)"
    others = sorted(str(s) for s in scope_names.ALL if str(s) not in needed)
    url = re.sub(r"\{[^}]+\}", "x", op.path)
    response = client.request(op.method.upper(), url, headers=bearer(token_for(others)))
    assert response.status_code == 403, (
        f"{op.name} answered {response.status_code} to a token without {sorted(needed)}: {response.text}"
    )
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["code"], problem["status"]) == ("insufficient_scope", 403)
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="partnerloop", error="insufficient_scope", scope="'), challenge
    assert set(challenge.rsplit('scope="', 1)[1].rstrip('"').split()) == needed, challenge


@pytest.mark.parametrize("op", PRIVATE, ids=lambda op: op.name)
def test_a_token_without_the_declared_scope_is_refused(
    op: Operation, client: TestClient, token_for: Callable[..., str]
) -> None:
    check_scope_is_enforced(op, client, token_for)


def test_the_walker_sees_every_private_operation() -> None:
    assert len(PRIVATE) > 80
    names = {op.name for op in PRIVATE}
    assert {"GET /v1/uploads", "GET /v1/uploads/{job_id}", "POST /v1/exchange", "PUT /v1/profile"} <= names
    assert declared_scopes(next(op for op in PRIVATE if op.name == "GET /v1/uploads")) == {
        "customers:write",
        "consents:write",
    }


def test_the_walker_catches_a_route_without_a_scope(
    app: FastAPI, client: TestClient, token_for: Callable[..., str]
) -> None:
    # The walker's own control: a route any valid token opens, as the uploads list once was.
    @app.get("/v1/probe/unscoped")
    def unscoped(caller: Authenticated) -> dict[str, str]:
        return {"tenant_id": caller.tenant_id}

    app.openapi_schema = None
    spec = app.openapi()["paths"]["/v1/probe/unscoped"]["get"]
    with pytest.raises(AssertionError, match="declares no scope"):
        check_scope_is_enforced(Operation("get", "/v1/probe/unscoped", spec), client, token_for)


def test_the_walker_catches_a_scope_declared_but_not_checked(
    app: FastAPI, client: TestClient, token_for: Callable[..., str]
) -> None:
    @app.get("/v1/probe/unchecked")
    def unchecked(caller: Authenticated) -> dict[str, str]:
        return {"tenant_id": caller.tenant_id}

    spec = {"security": [{SECURITY_SCHEME: ["reports:read"]}]}
    with pytest.raises(AssertionError, match="answered 200"):
        check_scope_is_enforced(Operation("get", "/v1/probe/unchecked", spec), client, token_for)
