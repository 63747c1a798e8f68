"""The story end to end, through the HTTP API with real tokens, with the demo retailers.

Pawsome Care (pet care) offers 15% off flea & tick to the dog owners of Snoozy Paws Beds (pet
beds). Snoozy approves the offer; only its consenting dog owners are shown it; the customer
redeems it once, a second use of the code is refused; the order is attributed to the impression
and shows up in both shops' ledgers and reports, and both are told by webhook event.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from partners import demo, outbox, redemptions, scopes
from partners.terms import agreement_digest
from tests.flows import bearer, staff_tokens

NOW = datetime.now(UTC)
AGREEMENT = "We exchange offers for consenting customers only; no customer data leaves either shop."


class Shop:
    """One demo retailer, acting through the API as its logged-in owner."""

    def __init__(self, client: TestClient, key: str, tenant_id: str) -> None:
        retailer = next(r for r in demo.RETAILERS if r.key == key)
        token = staff_tokens(client, retailer.owner_email, demo.DEMO_PASSWORD, " ".join(sorted(scopes.ALL)))
        self.client, self.tenant_id, self.headers = client, tenant_id, bearer(token["access_token"])

    def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers=self.headers, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None


def register(shop: Shop, customer: str, category: str, consents_to: str | None, notice_id: str) -> None:
    """A customer of `shop` with one order in `category`, and a partner-offers consent if given."""
    shop.call("PUT", f"/v1/customers/{customer}", expect=201, json={})
    order = {
        "order_id": f"{customer}-1",
        "ordered_at": (NOW - timedelta(days=20)).isoformat(),
        "currency": "GBP",
        "lines": [{"category_id": category, "unit_price_minor": 12_900, "channel": "physical"}],
    }
    shop.call("POST", f"/v1/customers/{customer}/purchases", expect=201, json=order)
    if consents_to is not None:
        event = {
            "event_id": f"{customer}-consent",
            "action": "granted",
            "purposes": ["partner_offers"],
            "partner": consents_to,
            "notice_id": notice_id,
            "method": "checkbox",
            "source": "checkout",
            "occurred_at": (NOW - timedelta(days=20)).isoformat(),
        }
        shop.call("POST", f"/v1/customers/{customer}/consent-events", expect=201, json=event)


def offers_for(shop: Shop, customer: str) -> list[dict[str, Any]]:
    body = {"customer_external_id": customer, "placement": "order_confirmation"}
    answer: dict[str, Any] = shop.call("POST", "/v1/exchange", json=body)
    return list(answer["offers"])


def test_the_pet_care_offer_reaches_the_bed_shops_consenting_dog_owners_and_is_paid_for(
    client: TestClient, session: Session
) -> None:
    tenants = demo.seed(session).tenants
    session.commit()
    beds = Shop(client, "pet-beds", tenants["pet-beds"])
    care = Shop(client, "pet-care", tenants["pet-care"])

    # Pawsome Care proposes a partnership; Snoozy Paws Beds accepts the terms it read.
    terms = {
        "my_offer_categories": ["cat_pet_supplies"],
        "partner_offer_categories": ["cat_dog_beds"],
        "cap_per_7_days": 3,
        "cap_per_30_days": 10,
        "commission_percent": 8,
        "attribution_window_days": 14,
        "agreement_text": AGREEMENT,
    }
    proposal = {"partner_tenant_id": beds.tenant_id, "terms": terms}
    partnership_id = care.call("POST", "/v1/partnerships", expect=201, json=proposal)["id"]
    accepting = {"terms_version": 1, "agreement_sha256": agreement_digest(AGREEMENT)}
    assert beds.call("POST", f"/v1/partnerships/{partnership_id}/accept", json=accepting)["state"] == "active"

    # The pet-care shop's offer, for dog owners, with single-use codes.
    offer = {
        "title": "15% off flea & tick for your dog",
        "landing_url": "https://pawsomecare.example/partner",
        "kind": "percent_off",
        "percent_off": 15,
        "currency": "GBP",
        "starts_at": (NOW - timedelta(hours=1)).isoformat(),
        "ends_at": (NOW + timedelta(days=60)).isoformat(),
        "targeting": {"categories": ["cat_dog_beds"]},  # dog owners who buy beds (Snoozy blocks dog food)
        "codes": {"mode": "pool"},
    }
    offer_id = care.call("POST", "/v1/offers", expect=201, json=offer)["id"]
    care.call("POST", f"/v1/offers/{offer_id}/codes/generate", json={"count": 5, "prefix": "PAW-"})
    care.call("POST", f"/v1/offers/{offer_id}/publish", json={"partnership_ids": [partnership_id]})
    beds.call("POST", f"/v1/partner-offers/{offer_id}/approve", json={"version": 1})

    # Snoozy's customers: a consenting dog owner, a dog owner who did not consent, a consenting cat owner.
    notice = {
        "key": "checkout",
        "language": "en",
        "text": "Show me offers from Snoozy Paws Beds' partner shops. I can withdraw at any time.",
        "purposes": ["partner_offers"],
        "partners": "all",
        "published_at": (NOW - timedelta(days=30)).isoformat(),
    }
    notice_id = beds.call("POST", "/v1/consent-notices", expect=201, json=notice)["id"]
    register(beds, "dog-owner", "cat_designer_dog_beds", "all", notice_id)
    register(beds, "quiet-dog-owner", "cat_orthopedic_dog_beds", None, notice_id)
    register(beds, "cat-owner", "cat_cat_beds", care.tenant_id, notice_id)

    forecast = care.call("GET", f"/v1/offers/{offer_id}/forecast", params={"partnership_id": partnership_id})
    assert (forecast["suppressed"], forecast["display"]) == (True, "fewer than 50"), "one customer is never shown"

    [shown] = offers_for(beds, "dog-owner")
    assert (shown["offer_id"], shown["partner"]["display_name"]) == (offer_id, "Pawsome Care")
    assert shown["code"].startswith("PAW-") and shown["impression_id"]
    assert offers_for(beds, "quiet-dog-owner") == [], "no consent, no offer"
    assert offers_for(beds, "cat-owner") == [], "not a dog owner"
    assert offers_for(beds, "nobody-we-know") == []

    # The dog owner buys at Pawsome Care with the code; Pawsome reports it.
    order = {"order_id": "PC-5001", "order_value": 4_000, "currency": "GBP", "code": shown["code"]}
    redemption = care.call("POST", "/v1/redemptions", expect=201, json=order)
    assert redemption["impression_id"] == shown["impression_id"], "attributed to the impression"
    assert (redemption["partnership_id"], redemption["host_tenant_id"]) == (partnership_id, beds.tenant_id)
    assert (redemption["commission_bps"], redemption["commission"]) == (800, 320)
    assert care.call("POST", "/v1/redemptions", json=order)["id"] == redemption["id"], "reported twice: once"
    second = care.call("POST", "/v1/redemptions", expect=409, json={**order, "order_id": "PC-5002"})
    assert second["code"] == "code_already_redeemed"

    # Both sides' ledgers and reports show it, each from its own side.
    for shop, owed, given, received, side in (
        (beds, "owed_to_me", 1, 0, "as_host"),
        (care, "owed_by_me", 0, 1, "as_offering"),
    ):
        [month] = shop.call("GET", f"/v1/partnerships/{partnership_id}/ledger")["months"]
        assert month[owed] == [{"currency": "GBP", "commissions": 320, "reversals": 0, "net": 320}]
        assert (month["impressions_given"], month["impressions_received"]) == (given, received)
        [entry] = shop.call("GET", f"/v1/partnerships/{partnership_id}/ledger/entries")["data"]
        assert (entry["redemption_id"], entry["impression_id"]) == (redemption["id"], shown["impression_id"])
        report = shop.call("GET", f"/v1/reports/partnerships/{partnership_id}")[side]["total"]
        assert (report["impressions"], report["unique_customers"], report["redemptions"]) == (1, 1, 1)
        assert (report["revenue"], report["commission"]) == ({"GBP": 4_000}, {"GBP": 320})
        assert report["conversion_rate"] == 1.0
    offer_report = care.call("GET", f"/v1/reports/offers/{offer_id}")["stats"]
    assert (offer_report["impressions"], offer_report["redemptions"]) == (1, 1)

    # Both partners are told (webhook events, written with the redemption).
    events = outbox.pending(session, care.tenant_id, redemptions.REDEMPTION_RECORDED)
    assert sorted(e.recipient for e in events) == sorted([beds.tenant_id, care.tenant_id])
