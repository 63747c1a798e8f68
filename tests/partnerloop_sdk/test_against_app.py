"""The SDK against our real app (in process, over the TestClient's transport) and the real database:
what it sends is what the API accepts, and what the API answers is what the SDK expects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from examples import story
from examples.pet_care import flea_tick_offer
from partnerloop_sdk import MemoryCursorStore, Partnerloop, PartnerloopError, UploadProgress, log_in, sign_up

BASE = "http://testserver"
PASSWORD = "correct horse battery staple"


@dataclass
class Shop:
    tenant_id: str
    api: Partnerloop
    staff_token: dict[str, Any]


@pytest.fixture
def transport(client: TestClient) -> httpx.BaseTransport:
    # The TestClient's own transport: the SDK's requests go to the app in process, through every middleware.
    found: httpx.BaseTransport = client._transport
    return found


@pytest.fixture
def shops(transport: httpx.BaseTransport) -> Iterator[dict[str, Shop]]:
    made: dict[str, Shop] = {}
    for key, profile in (("beds", story.BEDS_PROFILE), ("care", story.CARE_PROFILE)):
        email = f"owner@{key}.example"
        signed = sign_up(BASE, profile["display_name"], email, PASSWORD, transport=transport)
        token = log_in(BASE, email, PASSWORD, transport=transport)
        with Partnerloop.with_staff_token(BASE, token, transport=transport) as staff:
            staff.profile.put(profile)
            created = staff.clients.create("backend", story.SCOPES)
        api = Partnerloop.with_client_credentials(BASE, created["id"], created["client_secret"], transport=transport)
        made[key] = Shop(signed["tenant"]["id"], api, token)
    yield made
    for shop in made.values():
        shop.api.close()


def test_a_staff_login_refreshes_by_rotation_and_a_reused_refresh_token_ends_the_login(
    transport: httpx.BaseTransport, shops: dict[str, Shop]
) -> None:
    first = shops["beds"].staff_token
    saved: list[dict[str, Any]] = []
    staff = Partnerloop.with_staff_token(BASE, first | {"expires_at": 0}, on_token=saved.append, transport=transport)
    with staff:
        assert staff.profile.tenant()["id"] == shops["beds"].tenant_id  # refreshed first: the token had expired
        assert len(saved) == 1 and saved[0]["refresh_token"] != first["refresh_token"]
        assert saved[0]["refresh_token"].startswith("plp_rt_")
    # Presenting the used-up refresh token again is taken as theft: the whole login is revoked.
    replayed = Partnerloop.with_staff_token(BASE, first | {"expires_at": 0}, transport=transport)
    with replayed, pytest.raises(PartnerloopError) as raised:
        replayed.profile.tenant()
    assert (raised.value.status, raised.value.code) == (400, "invalid_grant")
    with Partnerloop.with_staff_token(BASE, saved[0], transport=transport) as revoked, pytest.raises(PartnerloopError):
        revoked.profile.tenant()


def test_a_refusal_of_the_api_arrives_as_one_typed_error(shops: dict[str, Shop]) -> None:
    care = shops["care"].api
    with pytest.raises(PartnerloopError) as unknown:
        care.redemptions.record("CARE-1", 4000, "GBP", code="NOPE-1")
    assert (unknown.value.status, unknown.value.code) == (404, "unknown_code")
    assert unknown.value.request_id is not None and unknown.value.request_id.startswith("req_")
    with pytest.raises(PartnerloopError) as invalid:
        care.redemptions.record("CARE-1", -5, "GBP", code="NOPE-1")
    assert (invalid.value.status, invalid.value.code, invalid.value.param) == (422, "validation_error", "order_value")


def test_a_wrong_client_secret_is_refused_at_the_token_endpoint(transport: httpx.BaseTransport) -> None:
    with (
        Partnerloop.with_client_credentials(BASE, "cli_nobody", "plp_cs_wrong", transport=transport) as api,
        pytest.raises(PartnerloopError) as raised,
    ):
        api.profile.tenant()
    assert (raised.value.status, raised.value.code) == (401, "invalid_client")


def test_the_exchange_answers_the_same_offers_and_codes_again_for_the_same_idempotency_key(
    shops: dict[str, Shop],
) -> None:
    beds, care = shops["beds"].api, shops["care"].api
    partnership = care.partnerships.propose(shops["beds"].tenant_id, story.TERMS)
    beds.partnerships.accept_pending(partnership["id"])
    now = datetime.now(UTC)
    upserted = care.offers.upsert("flea", flea_tick_offer(now), publish_to=[partnership["id"]])
    assert upserted.created and not care.offers.upsert("flea", flea_tick_offer(now)).created
    care.offers.generate_codes(upserted.offer["id"], 5, prefix="PAW-")
    pending = beds.partner_offers.get(upserted.offer["id"])
    beds.partner_offers.approve(pending["offer_id"], pending["pending_version"] or 0)
    notice = beds.consents.publish_notice(
        "offers", "Partner offers?", ["partner_offers"], published_at="2026-01-01T00:00:00Z"
    )
    beds.customers.upsert("anna")
    line = {"category_id": "cat_orthopedic_dog_beds", "unit_price_minor": 12900, "channel": "physical"}
    order = {"order_id": "B-1", "ordered_at": now.isoformat(), "currency": "GBP", "lines": [line]}
    assert beds.customers.record_purchase("anna", order).created
    beds.consents.grant("anna", event_id="g-1", notice_id=notice["id"], occurred_at=now.isoformat())

    first = beds.exchange.offers_for("anna", idempotency_key="B-1-confirmation")
    again = beds.exchange.offers_for("anna", idempotency_key="B-1-confirmation")
    assert [o["offer_id"] for o in first["offers"]] == [upserted.offer["id"]]
    assert again == first
    code = first["offers"][0]["code"]
    recorded = care.redemptions.record("C-1", 4000, "GBP", code=code)
    assert recorded.created and recorded.redemption["commission"] == 400
    assert not care.redemptions.record("C-1", 4000, "GBP", code=code).created  # the same order: a no-op
    with pytest.raises(PartnerloopError) as twice:
        care.redemptions.record("C-2", 4000, "GBP", code=code)
    assert (twice.value.status, twice.value.code) == (409, "code_already_redeemed")
    reversed_ = care.redemptions.reverse(recorded.redemption["id"], reason="refund")
    assert reversed_["reversed_at"] is not None and reversed_["reversal_reason"] == "refund"


def test_a_change_feed_resumes_from_the_stored_cursor(shops: dict[str, Shop]) -> None:
    care = shops["care"].api
    now = datetime.now(UTC)
    for n in range(3):
        care.offers.upsert(f"offer-{n}", flea_tick_offer(now))
    store = MemoryCursorStore()
    assert [c["offer"]["external_id"] for c in care.changes.iterate("offers", store, limit=2)] == [
        "offer-0", "offer-1", "offer-2",
    ]  # fmt: skip
    assert list(care.changes.iterate("offers", store)) == []
    care.offers.upsert("offer-1", flea_tick_offer(now) | {"title": "20% off"})
    changed = list(care.changes.iterate("offers", store))
    assert [(c["offer"]["external_id"], c["offer"]["content"]["title"]) for c in changed] == [("offer-1", "20% off")]


def test_an_upload_streams_a_file_and_reports_the_finished_job(shops: dict[str, Shop], tmp_path: Path) -> None:
    path = tmp_path / "customers.ndjson"
    lines = [json.dumps({"external_id": f"c-{i}"}) for i in range(300)] + ['{"external_id": "bad id with spaces"}']
    path.write_text("\n".join(lines) + "\n")
    seen: list[UploadProgress] = []
    job = shops["beds"].api.uploads.upload("customers", path, on_progress=seen.append, poll_seconds=0.05)
    assert (job["status"], job["rows_ok"], job["rows_failed"]) == ("done", 300, 1)
    assert job["errors"][0]["line"] == 301
    assert seen[-1].job == job and seen[-1].bytes_sent == path.stat().st_size
    assert shops["beds"].api.uploads.get(job["id"]) == job
    assert shops["beds"].api.customers.get("c-299")["external_id"] == "c-299"


def test_webhook_endpoints_hand_out_their_secret_once(shops: dict[str, Shop]) -> None:
    endpoints = shops["beds"].api.webhook_endpoints
    created = endpoints.create("https://beds.example/hooks", ["offer.*"])
    assert created["secret"].startswith("whsec_")
    assert [e["id"] for e in endpoints.list()] == [created["id"]]
    assert "secret" not in endpoints.get(created["id"])
    rotated = endpoints.rotate_secret(created["id"], overlap_seconds=60)
    assert rotated["secret"] != created["secret"] and rotated["previous_secret_expires_at"] is not None


def test_a_staff_login_with_the_wrong_password_is_refused(transport: httpx.BaseTransport) -> None:
    sign_up(BASE, "Shop", "owner@shop.example", PASSWORD, transport=transport)
    with pytest.raises(PartnerloopError) as raised:
        log_in(BASE, "owner@shop.example", "not the password at all", transport=transport)
    assert (raised.value.status, raised.value.code) == (401, "login_failed")
    token = log_in(BASE, "owner@shop.example", PASSWORD, scope="profile:read", transport=transport)
    assert token["scope"] == "profile:read" and token["refresh_token"].startswith("plp_rt_")
