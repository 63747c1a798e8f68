"""Offer feeds over HTTP: register, read (never the secret), list runs, delete; scopes."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import respx
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from partners import offer_sync
from partners.offer_feeds import OfferFeed
from partners.retailers import Tenant
from partners.settings import Settings
from tests.factories_sync import CLIENT_SECRET, FEED_URL, TOKEN_URL, feed_item, token_response
from tests.factories_webhooks import fake_resolver
from tests.flows import bearer

BODY = {"url": FEED_URL, "token_url": TOKEN_URL, "client_id": "sync", "client_secret": CLIENT_SECRET}


@pytest.fixture
def shop(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant()


@pytest.fixture
def headers(shop: Tenant, token_for: Callable[..., str]) -> dict[str, str]:
    return bearer(token_for(["offers:read", "offers:write"], tenant=shop))


def test_a_registered_feed_never_shows_its_secret_and_stores_it_encrypted(
    client: TestClient, session: Session, shop: Tenant, headers: dict[str, str]
) -> None:
    created = client.post("/v1/offer-feeds", json={**BODY, "interval_seconds": 600}, headers=headers)
    assert created.status_code == 201, created.text
    feed = created.json()
    assert feed["interval_seconds"] == 600 and feed["consecutive_failures"] == 0
    for response in (created, client.get(f"/v1/offer-feeds/{feed['id']}", headers=headers)):
        assert CLIENT_SECRET not in response.text and "secret" not in response.json()
    assert CLIENT_SECRET not in client.get("/v1/offer-feeds", headers=headers).text
    row = session.get(OfferFeed, (shop.id, feed["id"]))
    assert row is not None and CLIENT_SECRET not in row.client_secret_encrypted


def test_the_runs_of_a_feed_show_refused_items(
    client: TestClient,
    engine: Engine,
    worker_settings: Settings,
    shop: Tenant,
    headers: dict[str, str],
    make_offer_feed: Callable[..., OfferFeed],
) -> None:
    feed = make_offer_feed(shop)
    items = [feed_item("ok"), feed_item("bad", currency="XX")]
    with respx.mock(assert_all_called=True) as partner:
        partner.post(TOKEN_URL).mock(return_value=token_response())
        partner.get(FEED_URL).mock(return_value=httpx.Response(200, json={"offers": items}))
        offer_sync.sync_due(engine, worker_settings, resolver=fake_resolver())
    [run] = client.get(f"/v1/offer-feeds/{feed.id}/runs", headers=headers).json()["data"]
    assert (run["status"], run["created"], run["failed"]) == ("partial", 1, 1)
    assert run["item_errors"][0]["external_id"] == "bad" and run["item_errors"][0]["index"] == 1
    synced = client.get("/v1/offers", params={"external_id": "ok"}, headers=headers).json()["data"]
    assert len(synced) == 1
    shown = client.get(f"/v1/offer-feeds/{feed.id}", headers=headers).json()
    assert shown["last_success_at"] is not None


def test_a_deleted_feed_is_gone_but_its_offers_stay(
    client: TestClient, shop: Tenant, headers: dict[str, str], make_offer_feed: Callable[..., OfferFeed]
) -> None:
    feed = make_offer_feed(shop)
    assert client.delete(f"/v1/offer-feeds/{feed.id}", headers=headers).status_code == 204
    assert client.get(f"/v1/offer-feeds/{feed.id}", headers=headers).status_code == 404
    assert client.get(f"/v1/offer-feeds/{feed.id}/runs", headers=headers).status_code == 404


def test_registering_needs_offers_write_and_a_callable_url(
    client: TestClient, shop: Tenant, headers: dict[str, str], token_for: Callable[..., str]
) -> None:
    reader = bearer(token_for(["offers:read"], tenant=shop))
    assert client.post("/v1/offer-feeds", json=BODY, headers=reader).status_code == 403
    private = client.post("/v1/offer-feeds", json={**BODY, "url": "http://10.0.0.7/feed"}, headers=headers)
    assert private.status_code == 422 and private.json()["param"] == "url"
    too_often = client.post("/v1/offer-feeds", json={**BODY, "interval_seconds": 5}, headers=headers)
    assert too_often.status_code == 422
