"""The story end to end over real HTTP between processes: Partnerloop (`partnerloop serve` and
`partnerloop worker`) and the two example shops under uvicorn, each on a free port.

Nothing is mocked: the shops talk to Partnerloop only through the SDK, Partnerloop's worker
delivers the webhooks to the shops (the egress allowlist lets it reach 127.0.0.1), and the
database is the test database (SQLite, or PostgreSQL with PARTNERLOOP_TEST_DATABASE_URL).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from examples import story
from examples.processes import Processes, start_partnerloop, start_shops
from partnerloop_sdk import Partnerloop


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    running = Processes(tmp_path)
    yield running
    running.stop_all()


def test_the_story_runs_between_partnerloop_and_the_two_shops(
    database_url: str, engine: Engine, processes: Processes
) -> None:
    started = time.monotonic()
    partnerloop_url = start_partnerloop(processes, database_url, migrated=True)  # conftest migrated it
    beds = story.set_up_retailer(partnerloop_url, story.BEDS_PROFILE, "owner@beds.example")
    care = story.set_up_retailer(partnerloop_url, story.CARE_PROFILE, "owner@care.example")
    shops = {"pet_beds": (beds.client_id, beds.client_secret), "pet_care": (care.client_id, care.client_secret)}
    urls = start_shops(processes, partnerloop_url, shops)
    beds_url, care_url = urls["pet_beds"], urls["pet_care"]

    result = story.run_story(partnerloop_url, beds, care, beds_url, care_url, say=print)

    # The offer reaches only the customer who consented, with a single-use code of its own.
    assert result.consenting_offers == [result.offer_id]
    assert result.consenting_code is not None and result.consenting_code.startswith("PAW-")
    assert result.other_offers == []
    # The care shop's order with the code is recorded; a second order with the same code is refused.
    assert result.first_redemption is not None and result.first_redemption.status_code == 200
    assert "applied" in result.first_redemption.text
    assert result.second_redemption is not None and result.second_redemption.status_code == 409
    assert 'data-code="code_already_redeemed"' in result.second_redemption.text
    with Partnerloop.with_client_credentials(partnerloop_url, care.client_id, care.client_secret) as care_api:
        recorded = list(care_api.changes.iterate("redemptions"))
    assert [(r["role"], r["redemption"]["order_id"], r["redemption"]["code"]) for r in recorded] == [
        ("offering", "CARE-1", result.consenting_code)
    ]
    # Both shops received, and verified, the webhooks that concern them.
    beds_types = [m["type"] for m in result.beds_webhooks["messages"]]
    care_types = [m["type"] for m in result.care_webhooks["messages"]]
    assert {"partnership.proposed", "partnership.accepted", "offer.submitted", "redemption.recorded"} <= set(beds_types)
    assert {"partnership.accepted", "offer.approved", "redemption.recorded"} <= set(care_types)
    redeemed = next(m for m in result.care_webhooks["messages"] if m["type"] == "redemption.recorded")
    assert redeemed["data"]["order_id"] == "CARE-1" and redeemed["data"]["offer_id"] == result.offer_id
    assert result.beds_webhooks["refused"] == 0 and result.care_webhooks["refused"] == 0

    # A forged delivery (right headers, wrong signature) is refused and not kept.
    forged = redeemed | {"id": "evt_forged"}
    headers = {"webhook-id": "evt_forged", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,AAAA"}
    answer = httpx.post(f"{care_url}/webhooks/partnerloop", json=forged, headers=headers)
    assert answer.status_code == 400
    inbox = httpx.get(f"{care_url}/webhooks.json").json()
    assert inbox["refused"] == 1 and "evt_forged" not in {m["id"] for m in inbox["messages"]}
    print(f"story over HTTP: {time.monotonic() - started:.1f} s")
