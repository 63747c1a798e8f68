"""Offers over HTTP: the offering shop creates and publishes, the host approves or rejects, strangers see nothing."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from partners.db import utcnow
from partners.retailers import Tenant
from tests.factories_offers import OfferSetup, offer_body

SCOPES = ["offers:read", "offers:write"]


class Shop:
    def __init__(self, client: TestClient, tenant: Tenant, token: str) -> None:
        self.client, self.tenant, self.headers = client, tenant, {"Authorization": f"Bearer {token}"}

    def post(self, path: str, json: Any = None, **headers: str) -> Response:
        return self.client.post(path, json=json, headers={**self.headers, **headers})

    def put(self, path: str, json: Any) -> Response:
        return self.client.put(path, json=json, headers=self.headers)

    def patch(self, path: str, json: Any) -> Response:
        return self.client.patch(path, json=json, headers=self.headers)

    def get(self, path: str, **params: Any) -> Response:
        return self.client.get(path, params=params, headers=self.headers)


@pytest.fixture
def setup(make_offer_setup: Callable[..., OfferSetup]) -> OfferSetup:
    return make_offer_setup(offering_categories=["cat_dog_supplies"])


@pytest.fixture
def beds(client: TestClient, setup: OfferSetup, token_for: Callable[..., str]) -> Shop:
    return Shop(client, setup.offering, token_for(SCOPES, tenant=setup.offering))


@pytest.fixture
def care(client: TestClient, setup: OfferSetup, token_for: Callable[..., str]) -> Shop:
    return Shop(client, setup.host, token_for(SCOPES, tenant=setup.host))


def _published(beds: Shop, setup: OfferSetup, **overrides: Any) -> dict[str, Any]:
    created = beds.post("/v1/offers", offer_body(**overrides))
    assert created.status_code == 201, created.text
    published = beds.post(f"/v1/offers/{created.json()['id']}/publish", {"partnership_ids": [setup.partnership_id]})
    assert published.status_code == 200, published.text
    body: dict[str, Any] = published.json()
    return body


def test_create_publish_approve_and_serve(beds: Shop, care: Shop, setup: OfferSetup) -> None:
    created = beds.post("/v1/offers", offer_body())
    assert created.status_code == 201, created.text
    offer = created.json()
    assert offer["id"].startswith("off_") and offer["content"]["id"].startswith("ofv_")
    assert (offer["state"], offer["status"], offer["latest_version"]) == ("draft", "draft", 1)
    assert offer["content"]["percent_off"] == 20.0
    assert care.get("/v1/partner-offers").json()["data"] == [], "drafts stay private"

    published = beds.post(f"/v1/offers/{offer['id']}/publish", {"partnership_ids": [setup.partnership_id]}).json()
    assert published["status"] == "submitted"
    assert published["placements"][0]["approval"] == "awaiting_approval"

    inbox = care.get("/v1/partner-offers", awaiting_approval=True).json()["data"]
    assert [o["offer_id"] for o in inbox] == [offer["id"]]
    assert inbox[0]["pending"]["title"] == "20% off designer dog beds"
    assert inbox[0]["partner_tenant_id"] == setup.offering.id
    assert "budget" not in inbox[0] and "codes" not in inbox[0], "the host never sees budgets or codes"

    approved = care.post(f"/v1/partner-offers/{offer['id']}/approve", {"version": 1})
    assert approved.status_code == 200, approved.text
    assert (approved.json()["approval"], approved.json()["live"]) == ("approved", True)
    assert care.get("/v1/partner-offers", awaiting_approval=True).json()["data"] == []
    mine = beds.get(f"/v1/offers/{offer['id']}").json()
    assert mine["status"] == "live"
    placement = mine["placements"][0]
    assert (placement["serving_version"], placement["serving_status"], placement["live"]) == (1, "live", True)
    assert placement["partner_tenant_id"] == setup.host.id


def test_an_edit_waits_for_approval_and_a_rejection_says_why(beds: Shop, care: Shop, setup: OfferSetup) -> None:
    offer = _published(beds, setup)
    care.post(f"/v1/partner-offers/{offer['id']}/approve", {"version": 1})
    edited = beds.patch(f"/v1/offers/{offer['id']}", {"percent_off": 35, "ends_at": None})
    assert edited.status_code == 200, edited.text
    assert edited.json()["latest_version"] == 2
    assert edited.json()["content"]["ends_at"] is None
    assert edited.json()["status"] == "live", "version 1 keeps serving"

    seen = care.get(f"/v1/partner-offers/{offer['id']}").json()
    assert (seen["pending_version"], seen["serving_version"]) == (2, 1)
    assert (seen["pending"]["percent_off"], seen["serving"]["percent_off"]) == (35.0, 20.0)

    stale = care.post(f"/v1/partner-offers/{offer['id']}/approve", {"version": 1})
    assert stale.status_code == 409
    assert stale.json()["param"] == "version"
    no_reason = care.post(f"/v1/partner-offers/{offer['id']}/reject", {"version": 2})
    assert no_reason.status_code == 422
    rejected = care.post(f"/v1/partner-offers/{offer['id']}/reject", {"version": 2, "reason": "35% undercuts us"})
    assert rejected.status_code == 200, rejected.text
    placement = beds.get(f"/v1/offers/{offer['id']}").json()["placements"][0]
    assert (placement["rejected_version"], placement["rejection_reason"]) == (2, "35% undercuts us")
    assert (placement["serving_version"], placement["live"]) == (1, True)


def test_upsert_by_external_id(beds: Shop, care: Shop, setup: OfferSetup) -> None:
    body = offer_body(publish_to=[setup.partnership_id])
    first = beds.put("/v1/offers/by-external-id/SKU-42", body)
    assert first.status_code == 201, first.text
    again = beds.put("/v1/offers/by-external-id/SKU-42", body)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["latest_version"] == 1
    assert again.json()["external_id"] == "SKU-42"
    assert beds.get("/v1/offers", external_id="SKU-42").json()["data"][0]["id"] == first.json()["id"]
    assert len(care.get("/v1/partner-offers").json()["data"]) == 1
    bad = beds.put("/v1/offers/by-external-id/has%20space", offer_body())
    assert bad.status_code == 422
    assert bad.json()["param"] == "external_id"


def _window(days_from: int, days_to: int) -> dict[str, str]:
    now = utcnow()
    return {
        "starts_at": (now + timedelta(days=days_from)).isoformat(),
        "ends_at": (now + timedelta(days=days_to)).isoformat(),
    }


@pytest.mark.parametrize(
    ("overrides", "status", "param"),
    [
        ({"percent_off": 150}, 422, "percent_off"),
        ({"percent_off": -10}, 422, "percent_off"),
        ({"kind": "amount_off", "percent_off": None, "amount_off": -500}, 422, "amount_off"),
        ({"kind": "amount_off", "percent_off": None, "amount_off": 12.5}, 422, "amount_off"),
        (_window(5, 1), 422, "ends_at"),
        ({"starts_at": "2026-05-01T09:00:00"}, 422, "starts_at"),
        ({"ends_at": "9999-12-31T23:00:00-05:00"}, 422, "ends_at"),
        ({"currency": "gbp"}, 422, "currency"),
        ({"targeting": {"categories": ["cat_dog_beds"], "surprise": 1}}, 422, "targeting.surprise"),
        ({"unknown": True}, 422, "unknown"),
        ({"kind": "referral_bonus", "percent_off": None, "amount_off": 1000}, 422, "friend_amount_off"),
        ({"kind": "early_access", "percent_off": None}, 422, "public_sale_starts_at"),
        ({"budget": {"redemptions": 0}}, 422, "budget.redemptions"),
        ({"codes": {"mode": "shared"}}, 422, "codes.shared_code"),
    ],
)
def test_bad_offers_are_problems_naming_the_field(
    beds: Shop, overrides: dict[str, Any], status: int, param: str
) -> None:
    response = beds.post("/v1/offers", offer_body(**overrides))
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["param"] == param
    assert beds.get("/v1/offers").json()["data"] == []


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"targeting": {"categories": ["cat_cat_beds"]}}, "targeting.categories"),
        ({"currency": "USD"}, "currency"),
    ],
)
def test_offers_the_partnership_does_not_allow_cannot_be_published(
    beds: Shop, setup: OfferSetup, overrides: dict[str, Any], param: str
) -> None:
    offer = beds.post("/v1/offers", offer_body(**overrides)).json()
    response = beds.post(f"/v1/offers/{offer['id']}/publish", {"partnership_ids": [setup.partnership_id]})
    assert response.status_code == 422
    assert response.json()["param"] == param
    assert beds.get(f"/v1/offers/{offer['id']}").json()["state"] == "draft"


def test_patch_refuses_null_for_required_fields(beds: Shop) -> None:
    offer = beds.post("/v1/offers", offer_body()).json()
    response = beds.patch(f"/v1/offers/{offer['id']}", {"title": None})
    assert response.status_code == 422
    assert response.json()["param"] == "title"


def test_codes_upload_generate_and_no_code_in_two_pools(beds: Shop) -> None:
    pool = {"codes": {"mode": "pool"}}
    first = beds.post("/v1/offers", offer_body(**pool)).json()
    second = beds.post("/v1/offers", offer_body(**pool)).json()
    uploaded = beds.post(f"/v1/offers/{first['id']}/codes", {"codes": ["beds-1", "BEDS-1", "BEDS-2"]})
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json() == {"added": 2, "already_in_pool": 0, "total": 2, "available": 2}
    clash = beds.post(f"/v1/offers/{second['id']}/codes", {"codes": ["BEDS-2"]})
    assert clash.status_code == 422
    assert clash.json()["param"] == "codes"
    generated = beds.post(f"/v1/offers/{second['id']}/codes/generate", {"count": 25, "prefix": "PC"})
    assert generated.status_code == 200, generated.text
    assert len(set(generated.json()["codes"])) == 25 and generated.json()["available"] == 25
    assert beds.get(f"/v1/offers/{second['id']}").json()["codes"] == {
        "mode": "pool",
        "shared_code": None,
        "total": 25,
        "available": 25,
    }
    codeless = beds.post("/v1/offers", offer_body()).json()
    assert beds.post(f"/v1/offers/{codeless['id']}/codes", {"codes": ["X-1-2"]}).status_code == 409


def test_pause_resume_archive(beds: Shop, care: Shop, setup: OfferSetup) -> None:
    offer = _published(beds, setup)
    care.post(f"/v1/partner-offers/{offer['id']}/approve", {"version": 1})
    paused = beds.post(f"/v1/offers/{offer['id']}/pause")
    assert (paused.json()["state"], paused.json()["status"]) == ("paused", "paused")
    assert care.get(f"/v1/partner-offers/{offer['id']}").json()["live"] is False
    assert beds.post(f"/v1/offers/{offer['id']}/pause").status_code == 409
    assert beds.post(f"/v1/offers/{offer['id']}/resume").json()["status"] == "live"
    assert beds.post(f"/v1/offers/{offer['id']}/archive").json()["state"] == "archived"
    late = beds.patch(f"/v1/offers/{offer['id']}", {"title": "Back"})
    assert late.status_code == 409
    assert beds.get("/v1/offers", state="archived").json()["data"][0]["id"] == offer["id"]


def test_lists_are_pages(beds: Shop) -> None:
    ids = [beds.post("/v1/offers", offer_body(title=f"Offer {n}")).json()["id"] for n in range(3)]
    first = beds.get("/v1/offers", limit=2).json()
    second = beds.get("/v1/offers", limit=2, cursor=first["next_cursor"]).json()
    assert [o["id"] for o in first["data"] + second["data"]] == ids
    assert second["next_cursor"] is None


def test_idempotency_key_replays_a_create(beds: Shop) -> None:
    body = offer_body()
    first = beds.post("/v1/offers", body, **{"Idempotency-Key": "create-1"})
    again = beds.post("/v1/offers", body, **{"Idempotency-Key": "create-1"})
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    assert len(beds.get("/v1/offers").json()["data"]) == 1


def test_scopes_are_enforced(client: TestClient, setup: OfferSetup, token_for: Callable[..., str]) -> None:
    reader = Shop(client, setup.offering, token_for(["offers:read"], tenant=setup.offering))
    assert reader.get("/v1/offers").status_code == 200
    refused = reader.post("/v1/offers", offer_body())
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"


def test_a_stranger_gets_404_on_everything(
    beds: Shop,
    care: Shop,
    setup: OfferSetup,
    client: TestClient,
    make_tenant: Callable[..., Tenant],
    token_for: Callable[..., str],
) -> None:
    offer = _published(beds, setup, codes={"mode": "pool"})
    oid = offer["id"]
    stranger_tenant = make_tenant()
    stranger = Shop(client, stranger_tenant, token_for(SCOPES, tenant=stranger_tenant))
    attempts = [
        stranger.get(f"/v1/offers/{oid}"),
        stranger.patch(f"/v1/offers/{oid}", {"title": "mine"}),
        stranger.post(f"/v1/offers/{oid}/publish", {"partnership_ids": [setup.partnership_id]}),
        stranger.post(f"/v1/offers/{oid}/pause"),
        stranger.post(f"/v1/offers/{oid}/resume"),
        stranger.post(f"/v1/offers/{oid}/archive"),
        stranger.post(f"/v1/offers/{oid}/codes", {"codes": ["STEAL-1"]}),
        stranger.post(f"/v1/offers/{oid}/codes/generate", {"count": 1}),
        stranger.get(f"/v1/partner-offers/{oid}"),
        stranger.post(f"/v1/partner-offers/{oid}/approve", {"version": 1}),
        stranger.post(f"/v1/partner-offers/{oid}/reject", {"version": 1, "reason": "no"}),
        # The host is no owner, and the owner is no host.
        care.get(f"/v1/offers/{oid}"),
        care.patch(f"/v1/offers/{oid}", {"title": "mine"}),
        beds.post(f"/v1/partner-offers/{oid}/approve", {"version": 1}),
    ]
    assert [r.status_code for r in attempts] == [404] * len(attempts)
    assert all(r.json()["code"] == "not_found" for r in attempts)
    assert stranger.get("/v1/offers").json()["data"] == []
    assert stranger.get("/v1/partner-offers").json()["data"] == []
    stranger_offer = stranger.put("/v1/offers/by-external-id/X", offer_body()).json()
    assert stranger_offer["id"] != oid
    still = beds.get(f"/v1/offers/{oid}").json()
    assert (still["state"], still["latest_version"], still["codes"]["total"]) == ("published", 1, 0)


def test_odd_input_is_a_problem_never_a_500(beds: Shop, care: Shop, setup: OfferSetup) -> None:
    offer = _published(beds, setup)
    oid = offer["id"]
    attempts = [
        beds.patch(f"/v1/offers/{oid}", {"kind": "amount_off"}),
        beds.patch(f"/v1/offers/{oid}", {"targeting": {"categories": ["x" * 5000]}}),
        beds.patch(f"/v1/offers/{oid}", {"codes": {"mode": "pool"}}),
        beds.post("/v1/offers", offer_body(kind="amount_off", percent_off=None, amount_off=10**30)),
        beds.post("/v1/offers", offer_body(percent_off=1e308)),
        beds.post("/v1/offers", offer_body(budget={"value": 10**19})),
        beds.post("/v1/offers", offer_body(targeting={"categories": ["cat_dog_beds"], "price_max": -1})),
        beds.post(f"/v1/offers/{oid}/publish", {"partnership_ids": []}),
        beds.post(f"/v1/offers/{oid}/publish", {"partnership_ids": ["ptn_" + "z" * 300]}),
        beds.post(f"/v1/offers/{oid}/codes/generate", {"count": 10**6}),
        beds.put("/v1/offers/by-external-id/" + "a" * 500, offer_body()),
        beds.get("/v1/offers/" + "off_" * 200),
        care.post(f"/v1/partner-offers/{oid}/approve", {"version": 10**12}),
        care.post(f"/v1/partner-offers/{oid}/approve", {"version": 0}),
        care.post(f"/v1/partner-offers/{oid}/reject", {"version": 1, "reason": "x" * 501}),
    ]
    statuses = [r.status_code for r in attempts]
    assert all(400 <= s < 500 for s in statuses), statuses
    assert all(r.headers["content-type"].startswith("application/problem+json") for r in attempts)
