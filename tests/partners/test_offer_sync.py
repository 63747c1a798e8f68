"""The offer sync worker against a partner's feed and token endpoints (respx: only the partner is fake)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from partners import offer_sync
from partners.crypto import decrypt
from partners.db import unit_of_work
from partners.offer_feeds import OfferFeed, OfferSyncRun
from partners.offers import Offer
from partners.retailers import Tenant
from partners.settings import Settings
from tests.factories_sync import CLIENT_ID, CLIENT_SECRET, FEED_URL, TOKEN_URL, feed_item, token_response
from tests.factories_webhooks import PARTNER_HOST, fake_resolver


def _sync(engine: Engine, settings: Settings, resolver: Callable[[str, int], list[str]] | None = None) -> int:
    return offer_sync.sync_due(engine, settings, resolver=resolver or fake_resolver())


def _feed(session: Session, feed: OfferFeed) -> OfferFeed:
    session.expire_all()
    found = session.get(OfferFeed, (feed.tenant_id, feed.id))
    assert found is not None
    return found


def _runs(session: Session, feed: OfferFeed) -> list[OfferSyncRun]:
    session.expire_all()
    query = select(OfferSyncRun).where(col(OfferSyncRun.feed_id) == feed.id).order_by(col(OfferSyncRun.id))
    return list(session.exec(query).all())


def _offers(session: Session, tenant: Tenant) -> dict[str | None, Offer]:
    session.expire_all()
    return {o.external_id: o for o in session.exec(select(Offer).where(col(Offer.tenant_id) == tenant.id)).all()}


def _make_due(session: Session, feed: OfferFeed) -> None:
    row = _feed(session, feed)
    row.next_sync_at = datetime.now(UTC)
    session.add(row)
    session.commit()


@pytest.fixture
def shop(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant()


@pytest.fixture
def feed(shop: Tenant, make_offer_feed: Callable[..., OfferFeed]) -> OfferFeed:
    return make_offer_feed(shop)


def test_a_feed_is_read_with_a_client_credentials_token_and_its_offers_upserted(
    engine: Engine, session: Session, worker_settings: Settings, shop: Tenant, feed: OfferFeed
) -> None:
    with respx.mock(assert_all_called=True) as partner:
        token = partner.post(TOKEN_URL).mock(return_value=token_response("tok-1"))
        items = [feed_item("bed-1"), feed_item("bed-2", title="Two for one")]
        listing = partner.get(FEED_URL).mock(return_value=httpx.Response(200, json={"offers": items}))
        started = datetime.now(UTC)
        assert _sync(engine, worker_settings) == 1
    token_request = token.calls.last.request
    assert parse_qs(token_request.content.decode())["grant_type"] == ["client_credentials"]
    basic = base64.b64decode(token_request.headers["authorization"].removeprefix("Basic ")).decode()
    assert basic == f"{CLIENT_ID}:{CLIENT_SECRET}"
    assert listing.calls.last.request.headers["authorization"] == "Bearer tok-1"
    offers = _offers(session, shop)
    assert sorted(k for k in offers if k) == ["bed-1", "bed-2"]
    assert offers["bed-1"].state == "draft"
    [run] = _runs(session, feed)
    assert (run.status, run.items, run.created, run.updated, run.failed) == ("succeeded", 2, 2, 0, 0)
    row = _feed(session, feed)
    assert row.consecutive_failures == 0 and row.last_success_at is not None
    assert row.next_sync_at >= started + timedelta(seconds=row.interval_seconds)


def test_a_refused_item_is_kept_on_the_run_and_the_other_items_are_applied(
    engine: Engine, session: Session, worker_settings: Settings, shop: Tenant, feed: OfferFeed
) -> None:
    not_an_offer = {"external_id": "broken", "title": "no other field"}
    items = [
        feed_item("ok-1"),
        feed_item("bad-category", targeting={"categories": ["cat_does_not_exist"]}),
        not_an_offer,
        "not even an object",
        feed_item("ok-2"),
    ]
    with respx.mock(assert_all_called=True) as partner:
        partner.post(TOKEN_URL).mock(return_value=token_response())
        partner.get(FEED_URL).mock(return_value=httpx.Response(200, json={"offers": items}))
        _sync(engine, worker_settings)
    assert sorted(k for k in _offers(session, shop) if k) == ["ok-1", "ok-2"]
    [run] = _runs(session, feed)
    assert (run.status, run.items, run.created, run.failed) == ("partial", 5, 2, 3)
    errors = {e["index"]: e for e in run.item_errors}
    assert sorted(errors) == [1, 2, 3]
    assert errors[1]["external_id"] == "bad-category" and errors[1]["param"] == "targeting.categories"
    assert errors[2]["external_id"] == "broken" and errors[2]["param"] is not None
    assert errors[3]["external_id"] is None
    assert _feed(session, feed).consecutive_failures == 0


def test_an_item_with_a_control_character_is_refused_naming_its_field(
    engine: Engine, session: Session, worker_settings: Settings, shop: Tenant, feed: OfferFeed
) -> None:
    items = [feed_item("nul-title", title="Half\x00off"), feed_item("nul\x00id"), feed_item("ok-1")]
    with respx.mock(assert_all_called=True) as partner:
        partner.post(TOKEN_URL).mock(return_value=token_response())
        partner.get(FEED_URL).mock(return_value=httpx.Response(200, json={"offers": items}))
        _sync(engine, worker_settings)
    assert sorted(k for k in _offers(session, shop) if k) == ["ok-1"]
    [run] = _runs(session, feed)
    assert (run.status, run.created, run.failed) == ("partial", 1, 2)
    errors = {e["index"]: e for e in run.item_errors}
    assert errors[0]["param"] == "title" and errors[0]["external_id"] == "nul-title"
    assert "U+0000" in errors[0]["error"]
    assert errors[1]["param"] == "external_id" and errors[1]["external_id"] is None


def test_syncing_again_never_duplicates_offers(
    engine: Engine, session: Session, worker_settings: Settings, shop: Tenant, feed: OfferFeed
) -> None:
    documents = [
        [feed_item("bed-1"), feed_item("bed-2")],
        [feed_item("bed-1"), feed_item("bed-2"), feed_item("bed-1")],  # repeated in one document, too
        [feed_item("bed-1", title="New title"), feed_item("bed-2")],
    ]
    with respx.mock(assert_all_called=True) as partner:
        partner.post(TOKEN_URL).mock(return_value=token_response())
        listing = partner.get(FEED_URL)
        for document in documents:
            listing.mock(return_value=httpx.Response(200, json={"offers": document}))
            _make_due(session, feed)
            _sync(engine, worker_settings)
    offers = _offers(session, shop)
    assert len(offers) == 2
    runs = _runs(session, feed)
    assert [(r.created, r.updated, r.unchanged) for r in runs] == [(2, 0, 0), (0, 0, 3), (0, 1, 1)]


def test_a_partner_that_is_down_is_backed_off_exponentially_then_synced_when_back(
    engine: Engine, session: Session, worker_settings: Settings, shop: Tenant, feed: OfferFeed
) -> None:
    with respx.mock(assert_all_called=False) as partner:
        partner.post(TOKEN_URL).mock(return_value=token_response())
        listing = partner.get(FEED_URL).mock(side_effect=httpx.ConnectError("connection refused"))
        delays = []
        for _ in range(3):
            _make_due(session, feed)
            before = datetime.now(UTC)
            _sync(engine, worker_settings)
            row = _feed(session, feed)
            delays.append((row.next_sync_at - before).total_seconds())
        assert row.consecutive_failures == 3
        assert [run.status for run in _runs(session, feed)] == ["failed"] * 3
        assert "refused" in (row.last_error or "")
        # About 1, 2 and 4 minutes (±20 % jitter): each failure doubles the wait.
        for delay, expected in zip(delays, (60, 120, 240), strict=True):
            assert expected * 0.75 <= delay <= expected * 1.25
        # Until it is due again, nothing calls the partner.
        calls = listing.call_count
        assert _sync(engine, worker_settings) == 0 and listing.call_count == calls
        listing.mock(side_effect=None, return_value=httpx.Response(200, json={"offers": [feed_item("bed-1")]}))
        _make_due(session, feed)
        _sync(engine, worker_settings)
    row = _feed(session, feed)
    assert row.consecutive_failures == 0 and row.last_error is None
    assert "bed-1" in _offers(session, shop)


def test_retry_after_from_the_partner_is_honoured(
    engine: Engine, session: Session, worker_settings: Settings, feed: OfferFeed
) -> None:
    with respx.mock(assert_all_called=True) as partner:
        partner.post(TOKEN_URL).mock(return_value=token_response())
        partner.get(FEED_URL).mock(return_value=httpx.Response(503, headers={"Retry-After": "900"}))
        before = datetime.now(UTC)
        _sync(engine, worker_settings)
    row = _feed(session, feed)
    assert row.next_sync_at - before >= timedelta(seconds=900)
    [run] = _runs(session, feed)
    assert run.status == "failed" and run.error == "the feed answered HTTP 503"


def test_a_refused_token_fails_the_run_without_reading_the_feed(
    engine: Engine, session: Session, worker_settings: Settings, feed: OfferFeed
) -> None:
    with respx.mock(assert_all_called=False) as partner:
        partner.post(TOKEN_URL).mock(return_value=httpx.Response(401, json={"error": "invalid_client"}))
        listing = partner.get(FEED_URL).mock(return_value=httpx.Response(200, json={"offers": []}))
        _sync(engine, worker_settings)
    assert listing.call_count == 0
    [run] = _runs(session, feed)
    assert run.status == "failed" and "invalid_client" in (run.error or "")


@pytest.mark.parametrize("body", [b"<html>oops</html>", b'{"items": []}', b"[]"])
def test_a_feed_that_is_not_an_offers_document_fails_the_run(
    engine: Engine, session: Session, worker_settings: Settings, feed: OfferFeed, body: bytes
) -> None:
    with respx.mock(assert_all_called=True) as partner:
        partner.post(TOKEN_URL).mock(return_value=token_response())
        partner.get(FEED_URL).mock(return_value=httpx.Response(200, content=body))
        _sync(engine, worker_settings)
    [run] = _runs(session, feed)
    assert run.status == "failed" and run.error is not None


def test_a_feed_host_that_resolves_to_a_private_address_is_refused(
    engine: Engine, session: Session, worker_settings: Settings, feed: OfferFeed
) -> None:
    _sync(engine, worker_settings, resolver=fake_resolver({PARTNER_HOST: ["10.1.2.3"]}))
    [run] = _runs(session, feed)
    assert run.status == "failed" and (run.error or "").startswith("refused")


def test_a_leased_feed_is_not_claimed_twice(session: Session, settings: Settings, feed: OfferFeed) -> None:
    key = settings.encryption_key.get_secret_value()
    now = datetime.now(UTC)
    with unit_of_work(session.get_bind()) as first:  # type: ignore[arg-type]
        claimed = offer_sync.claim_due(first, now=now, limit=10, encryption_key=key)
    with unit_of_work(session.get_bind()) as second:  # type: ignore[arg-type]
        again = offer_sync.claim_due(second, now=now, limit=10, encryption_key=key)
    assert [c.feed_id for c in claimed] == [feed.id] and again == []
    assert claimed[0].client_secret == CLIENT_SECRET


def test_the_client_secret_is_encrypted_at_rest(session: Session, settings: Settings, feed: OfferFeed) -> None:
    row = _feed(session, feed)
    assert CLIENT_SECRET not in row.client_secret_encrypted
    assert decrypt(settings.encryption_key.get_secret_value(), row.client_secret_encrypted) == CLIENT_SECRET
