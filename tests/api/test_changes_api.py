"""Change feeds over HTTP: cursors, pages, tombstones, scopes and tenants."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from partners.offers import Offer
from partners.retailers import Tenant
from tests.factories_offers import OfferSetup
from tests.factories_redemptions import ShownOffer
from tests.flows import bearer


def _get(client: TestClient, token: str, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_offers_feed_pages_by_cursor_and_resumes_where_it_stopped(
    client: TestClient,
    make_tenant: Callable[..., Tenant],
    make_offer: Callable[..., Offer],
    token_for: Callable[..., str],
) -> None:
    shop = make_tenant()
    made = [make_offer(shop, external_id=f"o-{n}").id for n in range(3)]
    token = token_for(["offers:read", "offers:write"], tenant=shop)
    first = _get(client, token, "/v1/changes/offers", limit=2)
    assert [c["offer_id"] for c in first["data"]] == made[:2] and first["has_more"] is True
    rest = _get(client, token, "/v1/changes/offers", cursor=first["next_cursor"], limit=2)
    assert [c["offer_id"] for c in rest["data"]] == made[2:] and rest["has_more"] is False
    # Nothing new: the same position comes back to poll from.
    idle = _get(client, token, "/v1/changes/offers", cursor=rest["next_cursor"])
    assert idle["data"] == [] and idle["has_more"] is False
    archived = client.post(f"/v1/offers/{made[0]}/archive", headers=bearer(token))
    assert archived.status_code == 200, archived.text
    [change] = _get(client, token, "/v1/changes/offers", cursor=idle["next_cursor"])["data"]
    assert change["offer_id"] == made[0] and change["removed"] is True
    assert change["offer"]["state"] == "archived" and change["offer"]["external_id"] == "o-0"
    assert change["seq"] > rest["data"][-1]["seq"]


def test_a_cursor_of_another_feed_or_forged_is_refused(
    client: TestClient, make_tenant: Callable[..., Tenant], token_for: Callable[..., str]
) -> None:
    token = token_for(["offers:read"], tenant=make_tenant())
    cursor = _get(client, token, "/v1/changes/offers")["next_cursor"]
    for bad in (cursor, "eyJhIjoib2ZmZXJzOjk5In0.forged"):
        response = client.get("/v1/changes/partner-offers", params={"cursor": bad}, headers=bearer(token))
        assert response.status_code == 422 and response.json()["param"] == "cursor"


def test_the_hosts_feed_shows_approved_partner_offers_and_the_owner_feed_its_own(
    client: TestClient, make_live_offer: Callable[..., tuple[OfferSetup, Offer]], token_for: Callable[..., str]
) -> None:
    setup, offer = make_live_offer()
    host = token_for(["offers:read"], tenant=setup.host)
    [shown] = _get(client, host, "/v1/changes/partner-offers")["data"]
    assert (shown["offer_id"], shown["showable"], shown["removed"]) == (offer.id, True, False)
    assert shown["offer"]["title"] == "20% off designer dog beds"
    assert _get(client, host, "/v1/changes/offers")["data"] == []  # the host owns no offer
    owner = token_for(["offers:read"], tenant=setup.offering)
    assert [c["offer_id"] for c in _get(client, owner, "/v1/changes/offers")["data"]] == [offer.id]
    assert _get(client, owner, "/v1/changes/partner-offers")["data"] == []


def test_each_feed_needs_its_scope(
    client: TestClient, make_tenant: Callable[..., Tenant], token_for: Callable[..., str]
) -> None:
    token = token_for(["profile:read"], tenant=make_tenant())
    for path in ("offers", "partner-offers", "redemptions", "consent-events"):
        assert client.get(f"/v1/changes/{path}", headers=bearer(token)).status_code == 403


def test_the_redemptions_feed_shows_both_sides_and_hides_the_order_from_the_host(
    client: TestClient, shown_offer: Callable[..., ShownOffer], token_for: Callable[..., str]
) -> None:
    shown = shown_offer()
    offering = token_for(["redemptions:write", "reports:read"], tenant=shown.offering)
    body = {"order_id": "order-77", "order_value": 4_000, "currency": "GBP", "code": shown.code}
    recorded = client.post("/v1/redemptions", json=body, headers=bearer(offering))
    assert recorded.status_code == 201, recorded.text
    [mine] = _get(client, offering, "/v1/changes/redemptions")["data"]
    assert mine["role"] == "offering" and mine["redemption"]["order_id"] == "order-77"
    host = token_for(["reports:read"], tenant=shown.host)
    [theirs] = _get(client, host, "/v1/changes/redemptions")["data"]
    assert theirs["role"] == "host" and theirs["redemption_id"] == recorded.json()["id"]
    assert theirs["redemption"]["order_id"] is None and theirs["redemption"]["code"] is None
    assert theirs["redemption"]["commission"] == recorded.json()["commission"]
