"""Erasure and export over HTTP, with what the exchange left about the customer on both sides."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlmodel import Session

from partners import redemptions
from partners.db import utcnow
from partners.redemptions import RedemptionInput
from tests.factories_exchange import Story
from tests.factories_redemptions import ShownOffer
from tests.flows import bearer


def test_export_lists_offers_shown_codes_and_redemptions_and_erasure_empties_it(
    client: TestClient,
    session: Session,
    exchange_story: Callable[..., Story],
    show_offer: Callable[..., ShownOffer],
    token_for: Callable[..., str],
) -> None:
    story = exchange_story(pool=3)
    host, offering = story.setup.host, story.setup.offering
    shown = show_offer(story)
    assert shown.code is not None
    red = redemptions.record(
        session, offering.id, RedemptionInput("order-7", 5_000, "GBP", code=shown.code), now=utcnow()
    ).redemption
    session.commit()
    headers = bearer(token_for(["customers:write"], host))

    doc = client.get("/v1/customers/dog-owner-1/export", headers=headers).json()
    assert [(o["impression_id"], o["partner_id"], o["partner_name"], o["offer_id"]) for o in doc["offers_shown"]] == [
        (shown.impression_id, offering.id, offering.name, story.offer.id)
    ]
    assert doc["offers_shown"][0]["placement"] == "order_confirmation" and doc["offers_shown"][0]["shown_at"]
    assert [(a["placement"], a["shown"]) for a in doc["exchange_answers"]] == [("order_confirmation", 1)]
    assert [(c["partner_id"], c["code"], c["redeemed_at"] is not None) for c in doc["codes"]] == [
        (offering.id, shown.code, True)
    ]
    assert [(r["id"], r["order_id"], r["order_value"], r["currency"]) for r in doc["redemptions"]] == [
        (red.id, "order-7", 5_000, "GBP")
    ]

    erased = client.post("/v1/customers/dog-owner-1/erasure", headers=headers)
    assert erased.status_code == 200, erased.text
    assert erased.json()["partners_notified"] == 1
    assert client.get("/v1/customers/dog-owner-1/export", headers=headers).status_code == 404
