"""No tenant can read or change another tenant's data, through any route.

A walker over the OpenAPI document, so routes added later are covered without anyone
remembering to: for every operation with a path parameter it makes the object that the
parameter names for tenant A, then calls the route as tenant B holding every scope, and
expects 404 (or 403) with nothing of A's in the body. Every GET without path parameters
(the lists, "my organization", ...) is called as B too, after A has one of everything, and
must not show anything of A's.

When a new route names a path parameter the walker does not know, its test fails: add a
factory to OWNED (an object some tenant owns; OWNED_BY_PATH when the same name means another
kind of object on some routes) or SHARED (a value that is nobody's, such as a taxonomy
category) below. If the generated request body is not accepted, add one to BODIES.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.auth.principal import ClientsWrite
from api.deps import SessionDep
from partners import clients as clients_domain
from tests.api.walker import (
    DIRECTORY_OPERATIONS,
    OPERATIONS,
    OPERATOR_OPERATIONS,
    OWNED,
    OWNED_BY_PATH,
    QUERY_VALUES,
    READS_WITHOUT_PATH_PARAMS,
    SECURITY_SCHEME,
    SHARED,
    UPSERTS,
    WITH_PATH_PARAMS,
    Factory,
    Operation,
    World,
    body_for,
    is_public,
    leaked,
)
from tests.flows import bearer


def factory_for(path: str, name: str) -> tuple[Factory, bool] | None:
    """How to fill a path parameter of `path`, and whether it names a tenant's object."""
    for (prefix, param), factory in OWNED_BY_PATH.items():
        if param == name and path.startswith(prefix):
            return factory, True
    if name in OWNED:
        return OWNED[name], True
    if name in SHARED:
        return SHARED[name], False
    return None


def check_path_operation(op: Operation, world: World, outsider: str, client: TestClient) -> None:
    """Call `op` as tenant B on tenant A's objects; fail unless it is a clean 404 (or 403)."""
    names = op.params("path")
    fillers = {n: factory_for(op.path, n) for n in names}
    unknown = [n for n, filler in fillers.items() if filler is None]
    if unknown:
        pytest.fail(
            f"{op.name}: the tenant-isolation walker cannot fill the path parameter(s) {unknown}. "
            "Add a factory that makes tenant A's object to OWNED in tests/api/test_tenant_isolation.py "
            "(or a valid value to SHARED if the parameter names nobody's data)."
        )
    values = {n: filler[0](world) for n, filler in fillers.items() if filler is not None}
    owned = any(filler is not None and filler[1] for filler in fillers.values())
    url = op.path.format(**values)
    query = {n: QUERY_VALUES[n] for n in op.params("query", required_only=True) if n in QUERY_VALUES}
    response = client.request(
        op.method.upper(), url, headers=bearer(outsider), json=body_for(op, world), params=query or None
    )

    if not owned or op.name in UPSERTS:
        # Shared data, or B's own namesake: fine to answer, but nothing of A's may come with it.
        assert response.status_code < 500, response.text
        assert not leaked(response.text, world, set(values.values())), f"{op.name} shows tenant A's data to B"
        return
    assert response.status_code != 422 or response.json().get("code") != "validation_error", (
        f"{op.name} refused the walker's generated body ({response.text}); add a valid one to BODIES "
        "in tests/api/test_tenant_isolation.py"
    )
    assert response.status_code in {403, 404}, (
        f"{op.name} as tenant B on tenant A's object answered {response.status_code}: {response.text}"
    )
    assert response.headers["content-type"] == "application/problem+json"
    # The id B sent may be echoed back ("no partnership with id ..."); nothing else of A's may be.
    assert not leaked(response.text, world, set(values.values())), f"{op.name} leaks tenant A's data"


@pytest.mark.parametrize("op", WITH_PATH_PARAMS, ids=lambda op: op.name)
def test_another_tenants_object_is_not_found(op: Operation, world: World, outsider: str, client: TestClient) -> None:
    check_path_operation(op, world, outsider, client)


@pytest.mark.parametrize("op", READS_WITHOUT_PATH_PARAMS, ids=lambda op: op.name)
def test_reads_show_nothing_of_another_tenant(op: Operation, world: World, outsider: str, client: TestClient) -> None:
    for make in [*OWNED.values(), *OWNED_BY_PATH.values()]:
        make(world)
    required = op.params("query", required_only=True)
    missing = [n for n in required if n not in QUERY_VALUES]
    if missing:
        pytest.fail(
            f"{op.name}: the walker has no value for the required query parameter(s) {missing}; "
            "add one to QUERY_VALUES in tests/api/test_tenant_isolation.py"
        )
    response = client.get(op.path, params={n: QUERY_VALUES[n] for n in required}, headers=bearer(outsider))
    if is_public(op.method, op.path):
        assert response.status_code < 500, response.text
    elif (op.method, op.path) in OPERATOR_OPERATIONS:
        assert response.status_code == 401, f"{op.name} opened to a tenant's token: {response.status_code}"
    else:
        # B holds every scope: anything but its own data (or "you have none yet") makes the check vacuous.
        assert response.status_code in {200, 404}, f"{op.name} answered {response.status_code}: {response.text}"
    allowed = world.directory if (op.method, op.path) in DIRECTORY_OPERATIONS else set()
    assert not leaked(response.text, world, allowed), f"{op.name} shows tenant A's data to tenant B"


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.name)
def test_every_private_operation_declares_and_enforces_the_security_scheme(op: Operation, client: TestClient) -> None:
    declared = [requirement for requirement in op.spec.get("security", []) if SECURITY_SCHEME in requirement]
    if (op.method, op.path) in OPERATOR_OPERATIONS:
        assert not declared and op.spec.get("security"), f"{op.name} must declare the operator's scheme only"
        assert client.request(op.method.upper(), op.path).status_code == 401
        return
    if is_public(op.method, op.path):
        assert not declared, f"{op.name} is public but declares {SECURITY_SCHEME}"
        return
    assert declared, f"{op.name} does not declare the {SECURITY_SCHEME} security requirement in OpenAPI"
    url = re.sub(r"\{[^}]+\}", "x", op.path)
    response = client.request(op.method.upper(), url)
    assert response.status_code == 401, f"{op.name} answered {response.status_code} to a call without a token"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_the_walker_sees_the_routes_it_must() -> None:
    # If the walker silently found nothing to walk, every test above would pass vacuously.
    names = {op.name for op in WITH_PATH_PARAMS}
    assert {"GET /v1/clients/{client_id}", "PATCH /v1/staff/{user_id}", "DELETE /v1/clients/{client_id}"} <= names
    assert {"GET /v1/clients", "GET /v1/staff", "GET /v1/tenant"} <= {op.name for op in READS_WITHOUT_PATH_PARAMS}


def test_the_walker_catches_a_leaky_route(app: FastAPI, world: World, outsider: str) -> None:
    # The walker's own control: a route that looks clients up without their tenant must fail it.
    @app.get("/v1/probe/leaky/{client_id}")
    def leaky(client_id: str, caller: ClientsWrite, session: SessionDep) -> dict[str, Any]:
        view = clients_domain.find_client(session, client_id, "http://testserver")
        assert view is not None
        return {"id": view.client_id, "tenant_id": view.tenant_id}

    app.openapi_schema = None
    spec = app.openapi()["paths"]["/v1/probe/leaky/{client_id}"]["get"]
    with TestClient(app, raise_server_exceptions=False) as client, pytest.raises(AssertionError, match="answered 200"):
        check_path_operation(Operation("get", "/v1/probe/leaky/{client_id}", spec), world, outsider, client)


def test_the_walker_fails_on_a_parameter_it_cannot_fill(world: World, outsider: str, client: TestClient) -> None:
    op = Operation("get", "/v1/widgets/{widget_id}", {"parameters": [{"name": "widget_id", "in": "path"}]})
    with pytest.raises(pytest.fail.Exception, match="Add a factory"):
        check_path_operation(op, world, outsider, client)
