"""Consent notices, events, withdrawal and the current state over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from partners import disclosures, outbox
from partners.retailers import Tenant
from tests.flows import bearer

SCOPES = ["customers:write", "consents:write"]


def at(minutes: int = 0) -> str:
    return (datetime(2025, 5, 1, 8, 0, tzinfo=UTC) + timedelta(minutes=minutes)).isoformat()


class Shop:
    def __init__(self, client: TestClient, tenant: Tenant, token: str, partner: Tenant) -> None:
        self.client, self.tenant, self.headers, self.partner = client, tenant, bearer(token), partner

    def call(self, method: str, path: str, json: Any = None) -> Any:
        return self.client.request(method, path, json=json, headers=self.headers)

    def notice(self, partners: Any = "all", purposes: list[str] | None = None, key: str = "checkout") -> Any:
        body = {
            "key": key,
            "language": "en",
            "text": "May we show you offers from our partner shops?",
            "purposes": purposes or ["partner_offers", "overlap_analysis"],
            "partners": partners,
            "published_at": "2025-01-01T00:00:00Z",
        }
        return self.call("POST", "/v1/consent-notices", body)

    def event(self, **fields: Any) -> Any:
        return self.call("POST", "/v1/customers/c-1/consent-events", fields)

    def grant(self, event_id: str, notice_id: str, partner: str, minutes: int = 0, **extra: Any) -> Any:
        fields: dict[str, Any] = {
            "event_id": event_id,
            "action": "granted",
            "purposes": ["partner_offers"],
            "partner": partner,
            "notice_id": notice_id,
            "method": "checkbox",
            "source": "checkout",
            "occurred_at": at(minutes),
            "origin": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0", "page_url": "https://shop.example/checkout"},
        }
        fields.update(extra)
        return self.event(**fields)

    def states(self) -> list[tuple[str, str, str]]:
        body = self.call("GET", "/v1/customers/c-1/consents").json()
        return [(c["purpose"], c["partner"], c["status"]) for c in body["consents"]]


@pytest.fixture
def shop(
    client: TestClient,
    make_tenant: Callable[..., Tenant],
    make_partner: Callable[..., Tenant],
    token_for: Callable[..., str],
) -> Shop:
    tenant = make_tenant()
    made = Shop(client, tenant, token_for(SCOPES, tenant=tenant), make_partner(tenant))
    assert made.call("PUT", "/v1/customers/c-1", {}).status_code == 201
    return made


def test_notices_are_versioned_per_key_and_language(shop: Shop) -> None:
    first = shop.notice()
    second = shop.notice(partners=[shop.partner.id])
    german = shop.notice()
    assert first.status_code == 201, first.text
    assert [first.json()["version"], second.json()["version"], german.json()["version"]] == [1, 2, 3]
    assert first.json()["partners"] == "all" and second.json()["partners"] == [shop.partner.id]
    listed = shop.call("GET", "/v1/consent-notices", None).json()
    assert [n["id"] for n in listed["data"]] == [first.json()["id"], second.json()["id"], german.json()["id"]]
    one = shop.call("GET", f"/v1/consent-notices/{first.json()['id']}").json()
    assert one["text"].startswith("May we")


def test_a_notice_naming_a_retailer_that_is_not_a_partner_is_refused(
    shop: Shop, make_tenant: Callable[..., Tenant]
) -> None:
    response = shop.notice(partners=[shop.partner.id, make_tenant().id])
    assert response.status_code == 422
    assert response.json()["param"] == "partners.1"


def test_grant_replay_and_conflict(shop: Shop) -> None:
    notice = shop.notice().json()["id"]
    first = shop.grant("g-1", notice, shop.partner.id)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["replayed"] is False
    assert body["events"][0]["origin"] == {
        "ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0",
        "page_url": "https://shop.example/checkout",
    }
    assert [(c["partner"], c["status"]) for c in body["consents"]] == [(shop.partner.id, "granted")]
    again = shop.grant("g-1", notice, shop.partner.id)
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["events"][0]["id"] == body["events"][0]["id"]
    conflict = shop.grant("g-1", notice, shop.partner.id, minutes=1)
    assert conflict.status_code == 409 and conflict.json()["param"] == "event_id"


@pytest.mark.parametrize(
    ("change", "status", "param"),
    [
        ({"partner": "ten_01m8000000000000000000000a"}, 422, "partner"),
        ({"notice_id": "ntc_missing"}, 404, "notice_id"),
        ({"occurred_at": "2100-01-01T00:00:00Z"}, 422, "occurred_at"),
        ({"occurred_at": "2025-05-01T08:00:00"}, 422, "occurred_at"),
        ({"purposes": ["marketing"]}, 422, "purposes.0"),
        ({"colour": "blue"}, 422, "colour"),
    ],
)
def test_bad_consent_events_are_problems(shop: Shop, change: dict[str, Any], status: int, param: str) -> None:
    notice = shop.notice().json()["id"]
    fields = {"notice_id": notice, "partner": shop.partner.id, **change}
    response = shop.grant("g-1", fields.pop("notice_id"), fields.pop("partner"), **fields)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["param"] == param
    assert shop.states() == []


def test_events_for_an_unknown_customer_are_a_clear_404(shop: Shop) -> None:
    notice = shop.notice().json()["id"]
    response = shop.call(
        "POST",
        "/v1/customers/ghost/consent-events",
        {
            "event_id": "g-1",
            "action": "granted",
            "purposes": ["partner_offers"],
            "partner": shop.partner.id,
            "notice_id": notice,
            "method": "checkbox",
            "source": "checkout",
            "occurred_at": at(),
        },
    )
    assert response.status_code == 404 and response.json()["param"] == "external_id"


def test_double_opt_in_over_http(shop: Shop) -> None:
    notice = shop.notice().json()["id"]
    shop.grant("g-1", notice, "all", method="double_opt_in")
    assert shop.states() == [("partner_offers", "all", "pending")]
    confirmed = shop.event(
        event_id="c-1",
        action="confirmed",
        confirms="g-1",
        method="email_confirmation",
        source="email",
        occurred_at=at(5),
    )
    assert confirmed.status_code == 201, confirmed.text
    assert shop.states() == [("partner_offers", "all", "granted")]


def test_one_call_withdraws_everything_and_tells_partners(shop: Shop, session: Session) -> None:
    notice = shop.notice().json()["id"]
    granted = shop.grant("g-1", notice, "all", purposes=["partner_offers", "overlap_analysis"])
    assert granted.status_code == 201
    customer_id = shop.call("GET", "/v1/customers/c-1").json()["id"]
    disclosures.record_disclosure(session, shop.tenant.id, customer_id, shop.partner.id)
    session.commit()

    withdrawn = shop.call(
        "POST", "/v1/customers/c-1/consents/withdraw", {"method": "customer_service", "source": "customer_service"}
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert {e["purpose"] for e in withdrawn.json()["events"]} == {
        "partner_offers",
        "partner_contact_sharing",
        "overlap_analysis",
    }
    assert all(status == "withdrawn" for _, _, status in shop.states())
    told = outbox.pending(session, shop.tenant.id, outbox.CONSENT_WITHDRAWN)
    assert [e.payload["partner_id"] for e in told] == [shop.partner.id]


def test_withdrawing_one_partner_keeps_the_others(shop: Shop, make_partner: Callable[..., Tenant]) -> None:
    other = make_partner(shop.tenant)
    notice = shop.notice().json()["id"]
    shop.grant("g-1", notice, "all")
    response = shop.call(
        "POST",
        "/v1/customers/c-1/consents/withdraw",
        {"purposes": ["partner_offers"], "partner": shop.partner.id, "method": "toggle", "source": "account_page"},
    )
    assert response.status_code == 200, response.text
    states = set(shop.states())
    assert ("partner_offers", shop.partner.id, "withdrawn") in states
    assert ("partner_offers", "all", "granted") in states
    assert other.id not in {partner for _, partner, _ in states}


def test_history_lists_every_event_in_arrival_order(shop: Shop) -> None:
    notice = shop.notice().json()["id"]
    shop.grant("g-1", notice, shop.partner.id, minutes=0)
    shop.grant("g-2", notice, shop.partner.id, minutes=1)
    shop.call("POST", "/v1/customers/c-1/consents/withdraw", {"method": "toggle", "source": "account_page"})
    first = shop.call("GET", "/v1/customers/c-1/consent-events?limit=2").json()
    rest = shop.call("GET", f"/v1/customers/c-1/consent-events?cursor={first['next_cursor']}").json()
    events = first["data"] + rest["data"]
    assert [e["event_id"] for e in events[:2]] == ["g-1", "g-2"]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert rest["next_cursor"] is None


def test_preference_link_is_signed_and_expires(shop: Shop) -> None:
    response = shop.call("POST", "/v1/customers/c-1/preference-link", {"ttl_days": 7})
    assert response.status_code == 201, response.text
    link = response.json()
    assert link["url"].startswith("http://testserver/preferences/")
    expires = datetime.fromisoformat(link["expires_at"])
    assert timedelta(days=6, hours=23) < expires - datetime.now(UTC) <= timedelta(days=7)
    assert shop.call("POST", "/v1/customers/c-1/preference-link", {"ttl_days": 365}).status_code == 422
    assert shop.call("POST", "/v1/customers/ghost/preference-link").status_code == 404


def test_consent_routes_need_the_consents_scope(shop: Shop, client: TestClient, token_for: Callable[..., str]) -> None:
    narrow = token_for(["customers:write"], tenant=shop.tenant)
    response = client.get("/v1/customers/c-1/consents", headers=bearer(narrow))
    assert response.status_code == 403 and response.json()["code"] == "insufficient_scope"


def test_a_withdrawal_retried_under_its_event_id_is_a_no_op(shop: Shop) -> None:
    body = {"event_id": "w-1", "method": "unsubscribe_link", "source": "email"}
    first = shop.call("POST", "/v1/customers/c-1/consents/withdraw", body)
    again = shop.call("POST", "/v1/customers/c-1/consents/withdraw", body)
    assert first.status_code == again.status_code == 200, again.text
    assert (first.json()["replayed"], again.json()["replayed"]) == (False, True)
    assert [e["id"] for e in again.json()["events"]] == [e["id"] for e in first.json()["events"]]
