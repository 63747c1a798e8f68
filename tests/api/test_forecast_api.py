"""The reach forecast over HTTP: the offering tenant's offer and partnership only, an aggregate only."""

from collections.abc import Callable

from fastapi.testclient import TestClient

from partners.offers import Offer
from tests.factories_offers import OfferSetup


def test_the_offering_tenant_gets_a_suppressed_aggregate_and_nobody_else_gets_anything(
    client: TestClient,
    make_offer_setup: Callable[..., OfferSetup],
    make_offer: Callable[..., Offer],
    token_for: Callable[..., str],
) -> None:
    setup = make_offer_setup()
    offer = make_offer(setup.offering)
    path = f"/v1/offers/{offer.id}/forecast"
    mine = {"Authorization": f"Bearer {token_for(['offers:read'], tenant=setup.offering)}"}
    answer = client.get(path, params={"partnership_id": setup.partnership_id}, headers=mine)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["eligible"], body["suppressed"], body["display"]) == (None, True, "fewer than 50")
    assert (body["offer_id"], body["version"], body["blocked"]) == (offer.id, 1, None)

    host = {"Authorization": f"Bearer {token_for(['offers:read'], tenant=setup.host)}"}
    assert client.get(path, params={"partnership_id": setup.partnership_id}, headers=host).status_code == 404
    unknown = client.get(path, params={"partnership_id": "ptn_nope"}, headers=mine)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    assert client.get(path, headers=mine).status_code == 422, "partnership_id is required"
    no_scope = {"Authorization": f"Bearer {token_for(['reports:read'], tenant=setup.offering)}"}
    assert client.get(path, params={"partnership_id": setup.partnership_id}, headers=no_scope).status_code == 403
