"""Customers, purchases, profiles, erasure and export over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from partners import disclosures, outbox
from partners.retailers import Tenant
from tests.flows import bearer

T0 = "2025-03-01T10:00:00+00:00"
SCOPES = ["customers:write", "consents:write"]


class Shop:
    def __init__(self, client: TestClient, tenant: Tenant, token: str) -> None:
        self.client, self.tenant, self.headers = client, tenant, bearer(token)

    def call(self, method: str, path: str, json: Any = None, **headers: str) -> Any:
        return self.client.request(method, path, json=json, headers={**self.headers, **headers})


@pytest.fixture
def shop(client: TestClient, make_tenant: Callable[..., Tenant], token_for: Callable[..., str]) -> Shop:
    tenant = make_tenant()
    return Shop(client, tenant, token_for(SCOPES, tenant=tenant))


def order(order_id: str = "o-1", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": order_id,
        "ordered_at": T0,
        "currency": "EUR",
        "lines": [
            {"category_id": "cat_dog_beds", "unit_price_minor": 8900, "quantity": 1, "channel": "physical"},
            {"category_id": "cat_dog_toys", "unit_price_minor": 1200, "quantity": 2, "channel": "physical"},
        ],
    }
    body.update(changes)
    return body


def test_put_creates_then_updates_a_customer(shop: Shop) -> None:
    created = shop.call("PUT", "/v1/customers/c-1", {"email": "Jane@Example.com"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["external_id"] == "c-1" and body["id"].startswith("cus_")
    assert body["has_email"] is True and body["email"] is None
    assert "jane" not in created.text.lower()
    updated = shop.call("PUT", "/v1/customers/c-1", {"email": "jane@example.com", "store_email": True})
    assert updated.status_code == 200
    assert updated.json()["id"] == body["id"]
    fetched = shop.call("GET", "/v1/customers/c-1").json()
    assert fetched["email"] == "jane@example.com"


@pytest.mark.parametrize(
    ("path", "body", "code", "param"),
    [
        ("/v1/customers/jane@example.com", {}, "invalid", "external_id"),
        ("/v1/customers/c-1", {"email": "jane.example.com"}, "invalid", "email"),
        ("/v1/customers/c-1", {"email": "x@y.com", "nickname": "J"}, "validation_error", "nickname"),
        ("/v1/customers/c-1", {"store_email": True}, "invalid", "store_email"),
    ],
)
def test_bad_customers_are_problems_naming_the_field(
    shop: Shop, path: str, body: dict[str, Any], code: str, param: str
) -> None:
    response = shop.call("PUT", path, body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert (response.json()["code"], response.json()["param"]) == (code, param)


def test_customer_routes_need_the_customers_scope(
    shop: Shop, client: TestClient, token_for: Callable[..., str]
) -> None:
    shop.call("PUT", "/v1/customers/c-1", {})
    narrow = token_for(["offers:read"], tenant=shop.tenant)
    response = client.get("/v1/customers/c-1", headers=bearer(narrow))
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"


def test_purchases_build_the_profile(shop: Shop) -> None:
    shop.call("PUT", "/v1/customers/c-1", {})
    recorded = shop.call("POST", "/v1/customers/c-1/purchases", order())
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["total_minor"] == 8900 + 2400
    later = order("o-2", ordered_at="2025-04-01T10:00:00+00:00", lines=[order()["lines"][0]])
    assert shop.call("POST", "/v1/customers/c-1/purchases", later).status_code == 201
    profile = shop.call("GET", "/v1/customers/c-1/profile").json()
    assert profile["order_count"] == 2
    assert profile["currency"] == "EUR"
    assert profile["total_spend"] == [{"currency": "EUR", "orders": 2, "amount_minor": 20200}]
    assert profile["preferred_format"] == "physical"
    assert [i["category_id"] for i in profile["interests"]] == ["cat_dog_beds", "cat_dog_toys"]
    beds = profile["interests"][0]
    assert beds["price_band"] == {"currency": "EUR", "low_minor": 8900, "high_minor": 8900}
    assert sum(i["affinity"] for i in profile["interests"]) == pytest.approx(1.0)
    value = profile["lifetime_value"]
    assert value["historic_minor"] == 20200
    assert value["total_minor"] == value["historic_minor"] + value["expected_future_minor"]
    assert profile["days_since_last_order"] >= 0


def test_profile_before_any_order_is_empty(shop: Shop) -> None:
    shop.call("PUT", "/v1/customers/c-1", {})
    profile = shop.call("GET", "/v1/customers/c-1/profile").json()
    assert profile["order_count"] == 0 and profile["interests"] == [] and profile["lifetime_value"] is None


def test_the_same_order_again_is_a_no_op_and_a_changed_one_a_conflict(shop: Shop) -> None:
    shop.call("PUT", "/v1/customers/c-1", {})
    first = shop.call("POST", "/v1/customers/c-1/purchases", order())
    again = shop.call("POST", "/v1/customers/c-1/purchases", order())
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    changed = shop.call("POST", "/v1/customers/c-1/purchases", order(currency="GBP"))
    assert changed.status_code == 409 and changed.json()["param"] == "order_id"
    listed = shop.call("GET", "/v1/customers/c-1/purchases").json()
    assert [p["order_id"] for p in listed["data"]] == ["o-1"] and listed["next_cursor"] is None


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (order(ordered_at="2100-01-01T00:00:00Z"), 422, "ordered_at"),
        (order(ordered_at="2025-03-01T10:00:00"), 422, "ordered_at"),
        (order(currency="euro"), 422, "currency"),
        (order(lines=[]), 422, "lines"),
        (order(lines=[{"category_id": "cat_nope", "unit_price_minor": 1, "channel": "physical"}]), 422, None),
        (order(lines=[{"category_id": "cat_dog_beds", "unit_price_minor": -5, "channel": "physical"}]), 422, None),
        (order(lines=[{"category_id": "cat_dog_beds", "unit_price_minor": 5, "channel": "vinyl"}]), 422, None),
    ],
)
def test_bad_orders_are_problems(shop: Shop, body: dict[str, Any], status: int, param: str | None) -> None:
    shop.call("PUT", "/v1/customers/c-1", {})
    response = shop.call("POST", "/v1/customers/c-1/purchases", body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if param is not None:
        assert response.json()["param"] == param
    else:
        assert response.json()["param"].startswith("lines.0.")


def test_a_purchase_for_an_unknown_customer_is_a_clear_404(shop: Shop) -> None:
    response = shop.call("POST", "/v1/customers/ghost/purchases", order())
    assert response.status_code == 404
    assert response.json()["param"] == "external_id"
    assert "ghost" in response.json()["detail"]


def test_purchases_accept_an_idempotency_key(shop: Shop) -> None:
    shop.call("PUT", "/v1/customers/c-1", {})
    first = shop.call("POST", "/v1/customers/c-1/purchases", order(), **{"Idempotency-Key": "k1"})
    again = shop.call("POST", "/v1/customers/c-1/purchases", order(), **{"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"


def test_erasure_tells_partners_and_blocks_a_reimport(
    shop: Shop, session: Session, make_partner: Callable[..., Tenant]
) -> None:
    customer_id = shop.call("PUT", "/v1/customers/c-1", {"email": "jane@example.com"}).json()["id"]
    shop.call("POST", "/v1/customers/c-1/purchases", order())
    partner = make_partner(shop.tenant)
    disclosures.record_disclosure(session, shop.tenant.id, customer_id, partner.id)
    session.commit()

    erased = shop.call("POST", "/v1/customers/c-1/erasure")
    assert erased.status_code == 200, erased.text
    assert erased.json()["partners_notified"] == 1 and erased.json()["already_erased"] is False
    assert shop.call("POST", "/v1/customers/c-1/erasure").json()["already_erased"] is True
    assert shop.call("GET", "/v1/customers/c-1").status_code == 404
    again = shop.call("PUT", "/v1/customers/c-1", {})
    assert again.status_code == 409 and again.json()["code"] == "customer_suppressed"
    other_id = shop.call("PUT", "/v1/customers/c-2", {"email": "JANE@example.com"})
    assert other_id.status_code == 409 and other_id.json()["param"] == "email"
    events = outbox.pending(session, shop.tenant.id, outbox.ERASURE_REQUESTED)
    assert [e.payload["partner_id"] for e in events] == [partner.id]


def test_erasure_of_an_unknown_customer_is_404(shop: Shop) -> None:
    assert shop.call("POST", "/v1/customers/nobody/erasure").status_code == 404


def test_export_is_one_document_with_everything(shop: Shop, make_partner: Callable[..., Tenant]) -> None:
    shop.call("PUT", "/v1/customers/c-1", {"email": "jane@example.com", "store_email": True})
    shop.call("POST", "/v1/customers/c-1/purchases", order())
    partner = make_partner(shop.tenant)
    notice = shop.call(
        "POST",
        "/v1/consent-notices",
        {
            "key": "checkout",
            "language": "en",
            "text": "Partner offers?",
            "purposes": ["partner_offers"],
            "partners": "all",
        },
    ).json()
    shop.call(
        "POST",
        "/v1/customers/c-1/consent-events",
        {
            "event_id": "g-1",
            "action": "granted",
            "purposes": ["partner_offers"],
            "partner": partner.id,
            "notice_id": notice["id"],
            "method": "checkbox",
            "source": "checkout",
            "occurred_at": datetime.now(UTC).isoformat(),
        },
    )
    exported = shop.call("GET", "/v1/customers/c-1/export")
    assert exported.status_code == 200, exported.text
    doc = exported.json()
    assert doc["format"] == "partnerloop.customer-export/1"
    assert doc["customer"]["email"] == "jane@example.com" and doc["customer"]["email_hash"]
    assert [p["order_id"] for p in doc["purchases"]] == ["o-1"]
    assert doc["profile"]["order_count"] == 1
    assert [(e["event_id"], e["action"]) for e in doc["consent_history"]] == [("g-1", "granted")]
    assert [(c["partner"], c["status"]) for c in doc["consents"]] == [(partner.id, "granted")]
    assert [n["id"] for n in doc["notices"]] == [notice["id"]]
    assert doc["partners_informed"] == []
