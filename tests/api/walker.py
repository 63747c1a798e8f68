"""The tenant-isolation walkers' shared plumbing: the OpenAPI document's operations, tenant A's world.

Tenant A owns one of everything the factories below make; the walkers (test_tenant_isolation.py,
test_tenant_isolation_bodies.py, test_scope_walker.py) call every operation as someone else and
check that nothing of A's is shown or changed. Registered as a pytest plugin (tests/conftest.py)
for the `world` and `outsider` fixtures.
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
from sqlmodel import Session

from api.app import create_app
from partners import clients as clients_domain
from partners import holdouts, ingest_customers, ingest_jobs, surveys
from partners import scopes as scope_names
from partners.retailers import Tenant, create_tenant
from partners.scopes import Role
from partners.settings import Settings
from partners.taxonomy import load_taxonomy
from tests.factories import StaffMember

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
    # Objects a walker made once per test and shares between fields (by its own name).
    made: dict[str, Any] = field(default_factory=dict)

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


def _survey(world: World) -> str:
    purpose, definition = surveys.template("experience")
    survey, _ = surveys.create(
        world.session, world.tenant.id, purpose, replace(definition, title=world.marker("survey"))
    )
    world.session.commit()
    world.remember(survey.id)
    return str(survey.id)


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
PATTERN_CANDIDATES = ("GBP", "GB", "en", "x", "https://shop.example")


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


def leaked(text: str, world: World, allowed: set[str]) -> list[str]:
    """Those of A's private strings (less `allowed`) that appear in `text`."""
    return sorted(v for v in world.private - allowed if v in text)
