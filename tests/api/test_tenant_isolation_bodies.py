"""No tenant can reach another tenant's objects by naming them in a request body.

The other walkers put tenant A's ids in the path. This one walks every private operation that
changes something and has no path parameter (`POST /v1/offers`, `/v1/exchange`,
`/v1/redemptions`, `/v1/partnerships`, the uploads, `PUT /v1/profile`, ...): it fills the body
fields that carry ids (named like `*_id`, `*_ids`, `code`, found in the request schema) with
the ids of A's objects, calls the operation as tenant B holding every scope, and expects a
problem (403, 404 or 422) or a 2xx that touched nothing but B's own rows: the whole database
is compared before and after, and no row B's call wrote may carry anything of A's.

When a new operation's body has an id-like field the walker does not know, or a body that is
not JSON, its test fails: say what the field names in BODY_IDS (or BODY_IDS_BY_OPERATION
where the same name means something else on one route) or give a body in RAW_BODIES.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import Engine

from api.auth.principal import ClientsWrite
from api.deps import SessionDep
from partners import clients as clients_domain
from partners.schema import metadata
from tests.api.walker import (
    OPENAPI,
    OPERATIONS,
    OWNED,
    SHARED,
    Operation,
    World,
    _resolve,
    body_for,
    is_public,
    leaked,
)
from tests.factories_offers import offer_body
from tests.factories_partners import profile_input, terms_body
from tests.factories_redemptions import ShownOffer
from tests.factories_sync import CLIENT_SECRET, FEED_URL, TOKEN_URL
from tests.factories_webhooks import PARTNER_URL
from tests.flows import bearer

# Field names that carry an id (of ours or anyone's): these must be accounted for below.
ID_LIKE = re.compile(r"(^|_)ids?$|(^|_)code$")


class Kind(Enum):
    owned = "owned"  # an object of A's: B naming it must get nothing
    namesake = "namesake"  # a key each tenant chooses for itself: B's own object of that name is fine
    directory = "directory"  # A's public tenant id: naming a retailer is how partnerships start
    remote = "remote"  # not one of our ids (a client id at a partner's own OAuth server)


@dataclass(frozen=True)
class BodyId:
    kind: Kind
    make: Callable[[World], str] | None = None


def _story(world: World) -> ShownOffer:
    # A third retailer's offer shown at a fourth's, with its impression and single-use code: B is neither.
    if "shown" not in world.made:
        shown: ShownOffer = world.fixture("shown_offer")()
        world.remember(shown.impression_id, shown.code or "", shown.partnership_id)
        world.made["shown"] = shown
    found: ShownOffer = world.made["shown"]
    return found


def _tenant_id(world: World) -> str:
    return world.tenant.id


def _customer_external_id(world: World) -> str:
    return world.fixture("make_customer")(world.tenant, external_id=world.marker("customer")).external_id


def _order_id(world: World) -> str:
    redemption = world.fixture("make_redemption")(world.tenant)
    world.remember(redemption.id, redemption.order_id)
    return str(redemption.order_id)


def _code(world: World) -> str:
    code = _story(world).code
    assert code is not None
    return code


BODY_IDS: dict[str, BodyId] = {
    "partnership_id": BodyId(Kind.owned, OWNED["partnership_id"]),
    "partnership_ids": BodyId(Kind.owned, OWNED["partnership_id"]),
    "notice_id": BodyId(Kind.owned, OWNED["notice_id"]),
    "offer_id": BodyId(Kind.owned, OWNED["offer_id"]),
    "client_id": BodyId(Kind.owned, OWNED["client_id"]),
    "impression_id": BodyId(Kind.owned, lambda world: _story(world).impression_id),
    "code": BodyId(Kind.owned, _code),
    "customer_external_id": BodyId(Kind.namesake, _customer_external_id),
    "order_id": BodyId(Kind.namesake, _order_id),
    "shared_code": BodyId(Kind.namesake, _code),
    "partner_tenant_id": BodyId(Kind.directory, _tenant_id),
    # Not id-like by name, but tenant ids all the same (a notice's named partners).
    "partners": BodyId(Kind.directory, _tenant_id),
}
BODY_IDS_BY_OPERATION: dict[tuple[str, str], BodyId] = {
    ("POST /v1/offer-feeds", "client_id"): BodyId(Kind.remote),
}
# Bodies that would succeed if every id in them were B's (the id fields are then filled with A's),
# for operations whose generated body the domain refuses: then a leak shows as a 2xx.
VALID_BODIES: dict[str, Callable[[World], dict[str, Any]]] = {
    "POST /v1/staff/invitations": lambda world: {"email": "walker-invitee@b.example", "role": "viewer"},
    "POST /v1/clients": lambda world: {"name": "walker", "scopes": ["offers:read"]},
    "PUT /v1/profile": lambda world: dict(profile_input().__dict__),
    "POST /v1/partnerships": lambda world: {"partner_tenant_id": "", "terms": terms_body()},
    "POST /v1/offers": lambda world: offer_body(),
    "POST /v1/offer-feeds": lambda world: {
        "url": FEED_URL,
        "token_url": TOKEN_URL,
        "client_id": "sync",
        "client_secret": CLIENT_SECRET,
    },
    "POST /v1/webhook-endpoints": lambda world: {"url": PARTNER_URL, "events": ["offer.*"]},
    "POST /v1/surveys": lambda world: {"template": "experience"},
}
# Where B's call may write rows of A's by design: a proposal is stored on both sides.
CROSS_TENANT_WRITES = {"POST /v1/partnerships"}


def _raw_customers(world: World) -> dict[str, Any]:
    return {"external_id": _customer_external_id(world)}


def _raw_purchases(world: World) -> dict[str, Any]:
    return {
        "external_id": _customer_external_id(world),
        "order_id": _order_id(world),
        "ordered_at": datetime.now(UTC).isoformat(),
        "currency": "GBP",
        "lines": [
            {
                "category_id": SHARED["category_id"](world),
                "unit_price_minor": 1000,
                "quantity": 1,
                "channel": "physical",
            }
        ],
    }


def _raw_consent_events(world: World) -> dict[str, Any]:
    return {
        "external_id": _customer_external_id(world),
        "event_id": "walker-grant",
        "action": "granted",
        "purposes": ["partner_offers"],
        "partner": world.tenant.id,
        "notice_id": OWNED["notice_id"](world),
        "method": "checkbox",
        "source": "checkout",
        "occurred_at": datetime.now(UTC).isoformat(),
    }


# Operations whose body is not JSON: one NDJSON row naming A's objects.
RAW_BODIES: dict[str, Callable[[World], dict[str, Any]]] = {
    "POST /v1/uploads/customers": _raw_customers,
    "POST /v1/uploads/purchases": _raw_purchases,
    "POST /v1/uploads/consent-events": _raw_consent_events,
}
MUTATIONS = [
    op for op in OPERATIONS if op.method != "get" and not op.params("path") and not is_public(op.method, op.path)
]


def _properties(schema: dict[str, Any], seen: frozenset[str] = frozenset()) -> dict[str, dict[str, Any]]:
    """Every property of the schema, nested ones included, by name."""
    found: dict[str, dict[str, Any]] = {}
    ref = schema.get("$ref", "")
    if ref in seen:
        return found
    schema, seen = _resolve(schema), seen | {ref}
    for combinator in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(combinator, []):
            found.update(_properties(option, seen))
    if schema.get("type") == "array":
        found.update(_properties(schema.get("items", {}), seen))
    for name, sub in schema.get("properties", {}).items():
        found[name] = sub
        found.update(_properties(sub, seen))
    return found


def _is_list(schema: dict[str, Any]) -> bool:
    schema = _resolve(schema)
    options = [_resolve(s) for s in schema.get("anyOf", [schema])]
    return any(o.get("type") == "array" for o in options)


def body_ids(op: Operation) -> dict[str, BodyId]:
    """The operation's body fields that carry ids, and what each names; fails on one it cannot say."""
    content = op.spec.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    known: dict[str, BodyId] = {}
    unknown = []
    for name in _properties(schema):
        said = BODY_IDS_BY_OPERATION.get((op.name, name)) or BODY_IDS.get(name)
        if said is not None:
            known[name] = said
        elif ID_LIKE.search(name) and name not in SHARED:
            unknown.append(name)
    if unknown:
        pytest.fail(
            f"{op.name}: the body walker does not know what the field(s) {unknown} name. Add them to BODY_IDS "
            "(or BODY_IDS_BY_OPERATION) in tests/api/test_tenant_isolation_bodies.py with the factory of "
            "tenant A's object they name."
        )
    return known


def _fill(body: Any, schema: dict[str, Any], values: dict[str, Any]) -> None:
    """Put `values` in every field of that name the body has room for (top level and present nested objects)."""
    if not isinstance(body, dict):
        return
    properties = {}
    for option in [_resolve(schema), *(_resolve(s) for s in _resolve(schema).get("anyOf", []))]:
        properties.update(option.get("properties", {}))
    for name, sub in properties.items():
        if name in values:
            body[name] = [values[name]] if _is_list(sub) else values[name]
        elif isinstance(body.get(name), dict):
            _fill(body[name], sub, values)


Snapshot = set[tuple[str, str | None, tuple[str, ...]]]


def snapshot(engine: Engine) -> Snapshot:
    """Every row of every table, with the tenant owning it where the table says."""
    rows: Snapshot = set()
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            owner = "tenant_id" if "tenant_id" in table.c else ("id" if table.name == "tenants" else None)
            for row in connection.execute(table.select()).mappings():
                rows.add((table.name, row[owner] if owner else None, tuple(str(v) for v in row.values())))
    return rows


def _tenant_of(client: TestClient, token: str) -> str:
    response = client.get("/v1/tenant", headers=bearer(token))
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def check_body_operation(op: Operation, world: World, outsider: str, client: TestClient, engine: Engine) -> None:
    """Call `op` as B with A's ids in its body; fail unless it refused or changed only B's own rows."""
    content = op.spec.get("requestBody", {}).get("content", {})
    fields = body_ids(op)
    values = {name: said.make(world) for name, said in fields.items() if said.make is not None}
    # B may hold, and be answered with, what it sent of these: they are its own names or public ids.
    allowed = {values[n] for n, said in fields.items() if n in values and said.kind is not Kind.owned}
    echoed = set(values.values())
    outsider_tenant = _tenant_of(client, outsider)
    if "application/json" in content or not content:
        body = VALID_BODIES[op.name](world) if op.name in VALID_BODIES else body_for(op, world)
        if body is not None:
            _fill(body, content["application/json"]["schema"], values)
        request: dict[str, Any] = {"json": body}
    elif op.name in RAW_BODIES:
        row = RAW_BODIES[op.name](world)
        echoed |= {str(v) for v in row.values() if isinstance(v, str)}
        allowed |= {row["external_id"], row.get("order_id", ""), row.get("event_id", "")}
        request = {"content": json.dumps(row).encode() + b"\n", "headers": {"content-type": "application/x-ndjson"}}
    else:
        pytest.fail(
            f"{op.name} takes a body the walker cannot make ({sorted(content)}): add a row naming tenant A's "
            "objects to RAW_BODIES in tests/api/test_tenant_isolation_bodies.py"
        )
    before = snapshot(engine)
    headers = {**bearer(outsider), **request.pop("headers", {})}
    response = client.request(op.method.upper(), op.path, headers=headers, **request)
    after = snapshot(engine)

    assert response.status_code < 500, f"{op.name}: {response.text}"
    assert response.status_code != 422 or response.json().get("code") != "validation_error", (
        f"{op.name} refused the walker's generated body ({response.text}); add a valid one to BODIES in "
        "tests/api/walker.py"
    )
    assert response.status_code < 300 or response.status_code in {403, 404, 422}, (
        f"{op.name} as tenant B naming tenant A's objects answered {response.status_code}: {response.text}"
    )
    if response.status_code == 422:
        # Refused, but for one of A's ids: a refusal of anything else means the check never ran.
        param = str(response.json().get("param", "")).split(".")[0]
        assert param in values, (
            f"{op.name} refused the walker's body for '{param}', not for an id of A's ({response.text}); "
            "add a body that would otherwise succeed to VALID_BODIES in tests/api/test_tenant_isolation_bodies.py"
        )
    assert not leaked(response.text, world, echoed), f"{op.name} shows tenant A's data to B: {response.text}"
    theirs = [(table, owner) for table, owner, _ in before - after if owner != outsider_tenant]
    assert not theirs, f"{op.name} as tenant B changed or removed rows that are not B's: {theirs}"
    for table, owner, written in after - before:
        if owner not in (outsider_tenant, None) and op.name not in CROSS_TENANT_WRITES:
            pytest.fail(f"{op.name} as tenant B wrote a row of {table} for tenant {owner}")
        found = leaked(
            " ".join(written), world, allowed | (world.directory if op.name in CROSS_TENANT_WRITES else set())
        )
        assert not found, f"{op.name} as tenant B stored tenant A's {found} in {table}"


@pytest.mark.parametrize("op", MUTATIONS, ids=lambda op: op.name)
def test_another_tenants_ids_in_a_body_reach_nothing(
    op: Operation, world: World, outsider: str, client: TestClient, engine: Engine
) -> None:
    check_body_operation(op, world, outsider, client, engine)


def test_the_walker_sees_the_operations_it_must() -> None:
    names = {op.name for op in MUTATIONS}
    expected = {
        "POST /v1/offers",
        "POST /v1/exchange",
        "POST /v1/redemptions",
        "POST /v1/partnerships",
        "POST /v1/uploads/customers",
        "POST /v1/uploads/purchases",
        "POST /v1/uploads/consent-events",
        "PUT /v1/profile",
    }
    assert expected <= names
    redemptions = next(op for op in MUTATIONS if op.name == "POST /v1/redemptions")
    assert {"code", "impression_id", "order_id"} <= set(body_ids(redemptions))
    assert OPENAPI["paths"]


def _probe(app: FastAPI, path: str) -> Operation:
    """A probe route's operation, its body schema inlined (the walker resolves refs in the app's own document)."""
    app.openapi_schema = None
    document = app.openapi()
    spec = document["paths"][path]["post"]
    media = spec["requestBody"]["content"]["application/json"]
    media["schema"] = document["components"]["schemas"][media["schema"]["$ref"].rsplit("/", 1)[-1]]
    return Operation("post", path, spec)


class _ClientRef(BaseModel):
    client_id: str


class _WidgetRef(BaseModel):
    widget_id: str


def test_the_walker_catches_a_route_that_acts_on_an_id_in_its_body(
    app: FastAPI, world: World, outsider: str, engine: Engine
) -> None:
    # The walker's own control: a route that revokes the client named in its body, whoever owns it.
    @app.post("/v1/probe/leaky-revoke")
    def leaky(body: _ClientRef, caller: ClientsWrite, session: SessionDep) -> dict[str, str]:
        view = clients_domain.find_client(session, body.client_id, "http://testserver")
        assert view is not None and view.tenant_id is not None
        clients_domain.revoke_client(session, view.tenant_id, body.client_id)
        session.commit()
        return {"revoked": body.client_id}

    op = _probe(app, "/v1/probe/leaky-revoke")
    with TestClient(app, raise_server_exceptions=False) as client, pytest.raises(AssertionError, match="not B's"):
        check_body_operation(op, world, outsider, client, engine)


def test_the_walker_fails_on_an_id_field_it_does_not_know(
    app: FastAPI, world: World, outsider: str, engine: Engine
) -> None:
    @app.post("/v1/probe/widgets")
    def widgets(body: _WidgetRef, caller: ClientsWrite) -> dict[str, str]:
        return {"widget_id": body.widget_id}

    op = _probe(app, "/v1/probe/widgets")
    with (
        TestClient(app, raise_server_exceptions=False) as client,
        pytest.raises(pytest.fail.Exception, match="BODY_IDS"),
    ):
        check_body_operation(op, world, outsider, client, engine)
