"""ETags on single resources: If-None-Match answers 304 until the resource changes; If-Match guards offer writes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from partners.customers import Customer
from partners.offers import Offer
from partners.redemptions import Redemption
from partners.retailers import Tenant
from partners.webhooks import IssuedEndpoint
from tests.factories_offers import OfferSetup, offer_body
from tests.flows import bearer

ALL = ["offers:read", "offers:write", "redemptions:write", "webhooks:write", "customers:write"]


@pytest.fixture
def shop(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant()


@pytest.fixture
def headers(shop: Tenant, token_for: Callable[..., str]) -> dict[str, str]:
    return bearer(token_for(ALL, tenant=shop))


def test_an_unchanged_offer_answers_304_and_a_changed_one_a_new_etag(
    client: TestClient, shop: Tenant, headers: dict[str, str], make_offer: Callable[..., Offer]
) -> None:
    offer = make_offer(shop)
    first = client.get(f"/v1/offers/{offer.id}", headers=headers)
    etag = first.headers["etag"]
    assert first.status_code == 200 and etag.startswith('"')
    again = client.get(f"/v1/offers/{offer.id}", headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    weak = client.get(f"/v1/offers/{offer.id}", headers={**headers, "If-None-Match": f'"other", W/{etag}'})
    assert weak.status_code == 304
    client.patch(f"/v1/offers/{offer.id}", json={"title": "Changed"}, headers=headers).raise_for_status()
    changed = client.get(f"/v1/offers/{offer.id}", headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_if_match_on_patch_refuses_a_stale_write_with_412(
    client: TestClient, shop: Tenant, headers: dict[str, str], make_offer: Callable[..., Offer]
) -> None:
    offer = make_offer(shop)
    etag = client.get(f"/v1/offers/{offer.id}", headers=headers).headers["etag"]
    ok = client.patch(f"/v1/offers/{offer.id}", json={"title": "Mine"}, headers={**headers, "If-Match": etag})
    assert ok.status_code == 200, ok.text
    assert ok.headers.get("etag") is None  # writes do not claim a validator; GET again for it
    stale = client.patch(f"/v1/offers/{offer.id}", json={"title": "Lost"}, headers={**headers, "If-Match": etag})
    assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"
    now = client.get(f"/v1/offers/{offer.id}", headers=headers)
    assert now.json()["content"]["title"] == "Mine"
    assert now.headers["etag"] == client.get(f"/v1/offers/{offer.id}", headers=headers).headers["etag"]


def test_put_by_external_id_honours_if_none_match_star_and_if_match(
    client: TestClient, headers: dict[str, str]
) -> None:
    path = "/v1/offers/by-external-id/sku-1"
    missing = client.put(path, json=offer_body(), headers={**headers, "If-Match": '"anything"'})
    assert missing.status_code == 412
    created = client.put(path, json=offer_body(), headers={**headers, "If-None-Match": "*"})
    assert created.status_code == 201, created.text
    again = client.put(path, json=offer_body(), headers={**headers, "If-None-Match": "*"})
    assert again.status_code == 412
    etag = client.get(f"/v1/offers/{created.json()['id']}", headers=headers).headers["etag"]
    replaced = client.put(path, json=offer_body(title="Replaced"), headers={**headers, "If-Match": etag})
    assert replaced.status_code == 200, replaced.text


def test_other_single_resources_carry_etags_too(
    client: TestClient,
    shop: Tenant,
    headers: dict[str, str],
    make_endpoint: Callable[..., IssuedEndpoint],
    make_customer: Callable[..., Customer],
    make_redemption: Callable[..., Redemption],
    make_live_offer: Callable[..., tuple[OfferSetup, Offer]],
    token_for: Callable[..., str],
) -> None:
    endpoint = make_endpoint(shop).endpoint
    customer = make_customer(shop, external_id="cust-1")
    redemption = make_redemption(shop)
    for path in (
        f"/v1/webhook-endpoints/{endpoint.id}",
        f"/v1/customers/{customer.external_id}",
        f"/v1/redemptions/{redemption.id}",
    ):
        etag = client.get(path, headers=headers).headers["etag"]
        assert client.get(path, headers={**headers, "If-None-Match": etag}).status_code == 304, path
    setup, offer = make_live_offer()
    host = bearer(token_for(["offers:read"], tenant=setup.host))
    etag = client.get(f"/v1/partner-offers/{offer.id}", headers=host).headers["etag"]
    assert client.get(f"/v1/partner-offers/{offer.id}", headers={**host, "If-None-Match": etag}).status_code == 304


def test_errors_carry_no_etag(client: TestClient, headers: dict[str, str]) -> None:
    missing = client.get("/v1/offers/off_missing", headers={**headers, "If-None-Match": "*"})
    assert missing.status_code == 404 and "etag" not in missing.headers
