"""Control characters (NUL above all: PostgreSQL cannot store it) are refused before any route runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from partners.consent_ledger import ConsentEvent
from partners.customers import Customer
from partners.retailers import Tenant
from tests.flows import bearer, csrf_from


def assert_refused(response: Any, param: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert (body["code"], body["param"], body["status"]) == ("invalid_characters", param, 422)
    assert "U+00" in body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


@pytest.fixture
def headers(token_for: Callable[..., str]) -> dict[str, str]:
    return bearer(token_for())


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/partnerships/ptn_%00x", "partnership_id"),
        ("/v1/customers/a%00b", "external_id"),
        ("/v1/clients/cli_%00", "client_id"),
        ("/v1/offers/off_%00", "offer_id"),
        ("/v1/webhook-endpoints/whe_%00", "endpoint_id"),
        ("/v1/customers/a%01b", "external_id"),
        ("/v1/customers/a%09b", "external_id"),  # a tab has no place in a path either
    ],
)
def test_a_control_character_in_the_path_is_a_422_naming_the_parameter(
    client: TestClient, headers: dict[str, str], path: str, param: str
) -> None:
    assert_refused(client.get(path, headers=headers), param)


def test_a_control_character_in_the_path_of_no_route_still_is_refused(client: TestClient) -> None:
    assert_refused(client.get("/v1/nowhere%00"), "path")


def test_a_nul_in_the_query_is_refused_naming_the_parameter(client: TestClient, headers: dict[str, str]) -> None:
    assert_refused(client.get("/v1/customers?cursor=ab%00c", headers=headers), "cursor")
    assert_refused(client.get("/v1/customers?x%00=1", headers=headers), "query")


def test_a_nul_in_a_sign_up_changes_nothing(client: TestClient, session: Session) -> None:
    before = session.exec(select(func.count()).select_from(Tenant)).one()
    body = {"organization": "Evil\u0000Co", "email": "evil@shop.example", "password": "a long enough password"}
    assert_refused(client.post("/v1/tenants", json=body), "organization")
    session.expire_all()
    assert session.exec(select(func.count()).select_from(Tenant)).one() == before


def test_a_nul_deep_in_a_consent_event_is_refused_and_nothing_recorded(
    client: TestClient,
    session: Session,
    make_tenant: Callable[..., Tenant],
    make_partner: Callable[..., Tenant],
    make_customer: Callable[..., Customer],
    make_notice: Callable[..., Any],
    token_for: Callable[..., str],
) -> None:
    tenant = make_tenant()
    partner = make_partner(tenant)
    make_customer(tenant, "c-1")
    event = {
        "event_id": "e-1",
        "action": "granted",
        "purposes": ["partner_offers"],
        "partner": partner.id,
        "notice_id": make_notice(tenant).id,
        "method": "checkbox",
        "source": "checkout",
        "occurred_at": "2025-05-01T08:00:00Z",
        "origin": {"user_agent": "Mozilla/5.0\u0000"},
    }
    url = "/v1/customers/c-1/consent-events"
    assert_refused(client.post(url, json=event, headers=bearer(token_for(tenant=tenant))), "origin.user_agent")
    session.expire_all()
    assert session.exec(select(func.count()).select_from(ConsentEvent)).one() == 0


def test_escapes_are_read_as_json_reads_them(client: TestClient, headers: dict[str, str]) -> None:
    # `\\u0000` is a backslash and the text "u0000"; `\\\u0000` a backslash and a NUL.
    plain = b'{"organization": "Back\\\\u0000slash", "email": "no-at-sign", "password": "short"}'
    response = client.post("/v1/tenants", content=plain, headers={"content-type": "application/json"})
    assert (response.status_code, response.json()["code"]) == (422, "validation_error")
    nul = b'{"organization": "Back\\\\\\u0000slash", "email": "x@y.example", "password": "a long enough password"}'
    response = client.post("/v1/tenants", content=nul, headers={"content-type": "application/json"})
    assert_refused(response, "organization")


def test_a_nul_in_a_list_item_or_a_key_is_named(client: TestClient, headers: dict[str, str]) -> None:
    body: dict[str, Any] = {"url": "https://example.com/h", "events": ["consent.withdrawn", "x\u0000"]}
    assert_refused(client.post("/v1/webhook-endpoints", json=body, headers=headers), "events.1")
    assert_refused(client.put("/v1/customers/c-1", json={"bad\u0000key": 1}, headers=headers), "bad\u0000key")


def test_tabs_and_line_breaks_pass_in_free_text(client: TestClient, headers: dict[str, str], session: Session) -> None:
    response = client.put("/v1/customers/c-1", json={"email": None}, headers=headers)
    assert response.status_code == 201, response.text
    body = {"organization": "Tab\tand\nbreak", "email": "tabs@shop.example", "password": "a long enough password"}
    assert client.post("/v1/tenants", json=body).status_code == 201
    session.expire_all()
    assert session.exec(select(Tenant).where(col(Tenant.name) == "Tab\tand\nbreak")).one()


def test_a_raw_control_byte_in_json_stays_malformed_json(client: TestClient) -> None:
    raw = b'{"organization": "Evil\x00Co", "email": "x@y.example", "password": "a long enough password"}'
    response = client.post("/v1/tenants", content=raw, headers={"content-type": "application/json"})
    assert (response.status_code, response.json()["code"]) == (400, "malformed_json")


def test_a_nul_in_the_login_form_is_refused(client: TestClient) -> None:
    token = csrf_from(client.get("/login"))
    form = f"email=a%00b%40shop.example&password=whatever&csrf_token={token}"
    response = client.post("/login", content=form, headers={"content-type": "application/x-www-form-urlencoded"})
    assert_refused(response, "email")


def test_oauth_endpoints_answer_in_their_own_format(client: TestClient) -> None:
    form = "grant_type=client_credentials&client_id=cli_%00"
    response = client.post("/oauth/token", content=form, headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert client.get("/oauth/authorize?client_id=a%00").status_code == 400
