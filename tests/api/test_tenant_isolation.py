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

import json
import re
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.app import create_app
from api.auth.principal import ClientsWrite
from api.deps import SessionDep
from partners import clients as clients_domain
from partners import holdouts, ingest_customers, ingest_jobs, surveys
from partners import scopes as scope_names
from partners.retailers import Tenant, create_tenant
from partners.scopes import Role
from partners.settings import Settings
from partners.taxonomy import load_taxonomy
from tests.factories import StaffMember
from tests.flows import bearer

SECURITY_SCHEME = "partnerloop"
METHODS = ("get", "put", "post", "patch", "delete")
PUBLIC_PATHS = {"/healthz", "/readyz", "/login", "/logout"}
PUBLIC_PREFIXES = ("/.well-known/", "/oauth/")
PUBLIC_OPERATIONS = {("post", "/v1/tenants"), ("post", "/v1/invitations/accept")}
# Operator routes opened by the operator's own token, which no tenant holds (GET /metrics).
OPERATOR_OPERATIONS = {("get", "/metrics")}
# Routes that show other retailers' public profile by design (discovery): there A's tenant id
# and name may appear, never anything else of A's.
DIRECTORY_OPERATIONS = {("get", "/v1/partner-suggestions")}


def is_public(method: str, path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES) or (method, path) in PUBLIC_OPERATIONS


@dataclass
class World:
    """Tenant A, owner of everything the factories make, and what would betray a leak of it."""

    request: pytest.FixtureRequest
    session: Session
    tenant: Tenant
    owner: StaffMember
    # Strings of A's that must never reach B: ids, names, emails.
    private: set[str] = field(default_factory=set)
    # Of those, what other retailers may see in discovery (a public profile's tenant id and name).
    directory: set[str] = field(default_factory=set)

    def fixture(self, name: str) -> Any:
        return self.request.getfixturevalue(name)

    def remember(self, *values: str) -> None:
        self.private.update(v for v in values if v)

    def marker(self, kind: str) -> str:
        """A distinctive name to give an object, so a leak of it is easy to spot."""
        value = f"tenant-a-{kind}-{secrets.token_hex(4)}"
        self.remember(value)
        return value


Factory = Callable[[World], str]


def _client(world: World) -> str:
    issued = clients_domain.create_client(
        world.session, world.tenant.id, world.marker("client"), sorted(scope_names.ALL), scope_names.ALL, "test"
    )
    world.session.commit()
    world.remember(issued.client.id, issued.secret)
    return issued.client.id


def _staff_user(world: World) -> str:
    # Not the owner: a member that a (wrongly) successful call could actually change.
    make_staff = world.fixture("make_staff")
    member: StaffMember = make_staff(Role.marketer, world.tenant, email=world.marker("staff") + "@a.example")
    world.remember(member.user.id, member.user.email)
    return member.user.id


def _partnership(world: World) -> str:
    # Between A and a third retailer C: B is no party to it.
    partnership = world.fixture("make_partnership")(proposer=world.tenant)
    world.remember(partnership.id)
    return str(partnership.id)


def _customer(world: World) -> str:
    customer = world.fixture("make_customer")(world.tenant, external_id=world.marker("customer"))
    world.remember(customer.id)
    return str(customer.external_id)


def _survey(world: World) -> str:
    purpose, definition = surveys.template("experience")
    survey, _ = surveys.create(
        world.session, world.tenant.id, purpose, replace(definition, title=world.marker("survey"))
    )
    world.session.commit()
    world.remember(survey.id)
    return str(survey.id)


def _notice(world: World) -> str:
    notice = world.fixture("make_notice")(world.tenant)
    world.remember(notice.id)
    return str(notice.id)


def _offer(world: World, external_id: str | None = None) -> str:
    offer = world.fixture("make_offer")(world.tenant, external_id=external_id or world.marker("offer"))
    world.remember(offer.id)
    return str(offer.id)


def _offer_external_id(world: World) -> str:
    external_id = world.marker("offer")
    _offer(world, external_id)
    return external_id


def _partner_offer(world: World) -> str:
    # An offer another retailer published to its partner and the partner approved: B is neither.
    setup, offer = world.fixture("make_live_offer")()
    world.remember(offer.id, setup.partnership_id, setup.offering.id, setup.host.id)
    world.directory.update({setup.offering.id, setup.host.id})
    return str(offer.id)


def _holdout(world: World) -> str:
    partnership = world.fixture("make_partnership")(proposer=world.tenant)
    running = holdouts.set_share(world.session, world.tenant.id, partnership.id, "*", 1000, datetime.now(UTC))
    world.session.commit()
    assert running is not None
    world.remember(running.id, partnership.id)
    return str(running.id)


def _webhook_endpoint(world: World) -> str:
    issued = world.fixture("make_endpoint")(world.tenant)
    world.remember(issued.endpoint.id, issued.secret)
    return str(issued.endpoint.id)


def _event(world: World) -> str:
    # An event meant for A (its own data changed), with an endpoint of A subscribed to it.
    world.fixture("make_endpoint")(world.tenant)
    event = world.fixture("make_event")(world.tenant, "offer.approved")
    world.remember(event.id)
    return str(event.id)


def _redemption(world: World) -> str:
    redemption = world.fixture("make_redemption")(world.tenant)
    world.remember(redemption.id, redemption.order_id)
    return str(redemption.id)


def _offer_feed(world: World) -> str:
    feed = world.fixture("make_offer_feed")(world.tenant)
    world.remember(feed.id)
    return str(feed.id)


def _upload(world: World) -> str:
    marker = world.marker("customer")

    async def lines() -> AsyncIterator[bytes]:
        yield json.dumps({"external_id": marker}).encode() + b"\n"

    keys = ingest_customers.Keys(hash_key=b"k" * 32, encryption_key="")
    job = anyio.run(
        ingest_customers.ingest_customers,
        world.fixture("engine"),
        world.tenant.id,
        lines(),
        ingest_jobs.UploadFormat.ndjson,
        keys,
    )
    world.remember(job.id)
    return str(job.id)


def _category(world: World) -> str:
    tree = load_taxonomy()
    return next(c.id for c in tree if tree.is_leaf(c.id))


# Path parameter -> how to make tenant A's object and return its id.
OWNED: dict[str, Factory] = {
    "client_id": _client,
    "user_id": _staff_user,
    "partnership_id": _partnership,
    "external_id": _customer,
    "notice_id": _notice,
    "offer_id": _offer,
    "endpoint_id": _webhook_endpoint,
    "event_id": _event,
    "redemption_id": _redemption,
    "job_id": _upload,
    "feed_id": _offer_feed,
    "survey_id": _survey,
    "holdout_id": _holdout,
}
# Where one parameter name means another kind of object on some routes: (path prefix, name).
OWNED_BY_PATH: dict[tuple[str, str], Factory] = {
    ("/v1/offers/by-external-id/", "external_id"): _offer_external_id,
    ("/v1/partner-offers/", "offer_id"): _partner_offer,
}
# Path parameters that name nobody's data (any tenant may read them): filled with a valid value
# (body fields of the same name get it too).
SHARED: dict[str, Factory] = {
    "category_id": _category,
}
# Upserts keyed by an id the caller chooses (external ids are per tenant): B writing to the same
# external id makes B's own object, so a 2xx is fine here; showing anything of A's is not.
UPSERTS = {"PUT /v1/customers/{external_id}", "PUT /v1/offers/by-external-id/{external_id}"}
# Required query parameters of GET routes without path parameters.
QUERY_VALUES: dict[str, str] = {
    "q": "bed",
    "partnership_id": "ptn_01m8walkerwalkerwalkerwalk",
    # /oauth/authorize (public): a well-formed request of the docs client.
    "response_type": "code",
    "client_id": "partnerloop-docs",
    "redirect_uri": "http://testserver/docs/oauth2-redirect",
    "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    "code_challenge_method": "S256",
}
# Request bodies the schema-driven generator cannot make acceptable, by "METHOD /path".
# Prefer bodies that would succeed if the object were the caller's: then a leak shows as a 2xx.
BODIES: dict[str, Callable[[World], dict[str, Any]]] = {
    "PATCH /v1/staff/{user_id}": lambda world: {"role": "viewer", "active": False},
    "POST /v1/customers/{external_id}/consent-events": lambda world: {
        "event_id": "walker-withdrawal",
        "action": "withdrawn",
        "purposes": ["partner_offers"],
        "partner": "all",
        "method": "customer_service",
        "source": "customer_service",
        "occurred_at": datetime.now(UTC).isoformat(),
    },
}
# Values for string fields with a `pattern`, tried in order (ISO codes, mostly).
PATTERN_CANDIDATES = ("GBP", "GB", "en", "x")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.path}"

    def params(self, where: str, required_only: bool = False) -> list[str]:
        return [
            p["name"]
            for p in self.spec.get("parameters", [])
            if p["in"] == where and (p.get("required") or not required_only)
        ]


def _openapi() -> dict[str, Any]:
    # Collection time: the routes as the app mounts them (no database is touched).
    placeholder = "walker-" + "x" * 40
    settings = Settings(
        database_url="sqlite://",
        base_url="http://testserver",
        secret_key=placeholder,
        encryption_key=placeholder,
        identity_hash_key=placeholder,
    )
    spec: dict[str, Any] = create_app(settings).openapi()
    return spec


OPENAPI = _openapi()
OPERATIONS = [
    Operation(method, path, spec)
    for path, item in OPENAPI["paths"].items()
    for method, spec in item.items()
    if method in METHODS
]
WITH_PATH_PARAMS = [op for op in OPERATIONS if op.params("path")]
READS_WITHOUT_PATH_PARAMS = [op for op in OPERATIONS if op.method == "get" and not op.params("path")]


# A request body from the OpenAPI schema: required fields, smallest valid values.


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = OPENAPI["components"]["schemas"][name]
    return schema


def example(schema: dict[str, Any], world: World) -> Any:
    schema = _resolve(schema)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][-1]
    if "default" in schema:
        return schema["default"]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            options = [s for s in schema[combinator] if _resolve(s).get("type") != "null"]
            return example(options[0], world)
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {
            name: SHARED[name](world) if name in SHARED else example(properties[name], world)
            for name in schema.get("required", [])
        }
    if kind == "array":
        return [example(schema.get("items", {}), world) for _ in range(max(1, schema.get("minItems", 1)))]
    if kind == "string":
        if "pattern" in schema:
            return next((c for c in PATTERN_CANDIDATES if re.search(schema["pattern"], c)), "x")
        if schema.get("format") == "date-time":
            return datetime.now(UTC).isoformat()
        return "x" * max(1, schema.get("minLength", 1))
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return float(max(1, schema.get("minimum", 1)))
    if kind == "boolean":
        return False
    return None


def body_for(op: Operation, world: World) -> dict[str, Any] | None:
    if op.name in BODIES:
        return BODIES[op.name](world)
    content = op.spec.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    body: dict[str, Any] | None = example(content["application/json"]["schema"], world)
    return body


@pytest.fixture
def world(request: pytest.FixtureRequest, session: Session, make_staff: Callable[..., StaffMember]) -> World:
    tenant = create_tenant(session, f"tenant-a-name-{secrets.token_hex(4)}")
    session.commit()
    owner = make_staff(Role.owner, tenant, email=f"tenant-a-owner-{secrets.token_hex(4)}@a.example")
    made = World(request, session, tenant, owner)
    made.remember(tenant.id, tenant.name, owner.user.id, owner.user.email)
    made.directory.update({tenant.id, tenant.name})
    return made


@pytest.fixture
def outsider(token_for: Callable[..., str]) -> str:
    """Tenant B's access token, holding every scope there is."""
    return token_for()


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


def leaked(text: str, world: World, allowed: set[str]) -> list[str]:
    return sorted(v for v in world.private - allowed if v in text)


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
