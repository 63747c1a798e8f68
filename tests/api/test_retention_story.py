"""The retention story on the demo data, end to end: the lapsed dog owner of the pet-bed shop is listed
as at risk, gets the pet-care shop's offer in a win-back email only while consenting, answers the
defection survey, and the answer shows up in the aggregates and as a webhook."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from partners import consent, deliveries, demo, demo_retention, demo_story, outbox, retailers, survey_answers, webhooks
from partners.consent_rules import Method, Source
from partners.db import utcnow
from partners.settings import Settings
from tests.flows import bearer

SCOPES = ["customers:write", "exchange:read", "surveys:write", "surveys:read"]


def win_back(client: TestClient, headers: dict[str, str], external_id: str) -> Any:
    body = {"customer_external_id": external_id, "placement": "win_back"}
    response = client.post("/v1/exchange", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["offers"]


def test_the_lapsed_dog_owner_story(
    client: TestClient,
    session: Session,
    settings: Settings,
    token_for: Callable[..., str],
    make_endpoint: Callable[..., webhooks.IssuedEndpoint],
) -> None:
    keys = demo_story.Keys(
        settings.identity_hash_key.get_secret_value().encode(), settings.encryption_key.get_secret_value()
    )
    tenants = demo.seed(session).tenants
    demo_story.seed_story(session, tenants, keys, utcnow())
    seeded = demo_retention.seed_retention(session, tenants, keys, utcnow())
    assert seeded.created and seeded.survey_id is not None
    assert not demo_retention.seed_retention(session, tenants, keys, utcnow()).created  # once only
    beds = retailers.get_tenant(session, tenants["pet-beds"])
    hook = make_endpoint(beds, events=("survey.answered",))
    session.commit()
    headers = bearer(token_for(SCOPES, tenant=beds))

    # Listed as at risk, with the other (recent) dog owners active.
    listed = client.get("/v1/churn-risk/customers?level=at_risk", headers=headers).json()
    assert [c["external_id"] for c in listed["data"]] == [demo_retention.LAPSED]
    assert listed["counts"]["at_risk"] == 1 and listed["counts"]["active"] == demo_story.CUSTOMERS

    # The win-back email carries Pawsome Care's offer for them; an active dog owner is not for win-back.
    offers = win_back(client, headers, demo_retention.LAPSED)
    assert [(o["partner"]["tenant_id"], o["partner"]["display_name"]) for o in offers] == [
        (tenants["pet-care"], "Pawsome Care")
    ]
    assert win_back(client, headers, "dog-owner-01") == []

    # They answer the defection survey through their link.
    issued = client.post(
        f"/v1/surveys/{seeded.survey_id}/links", json={"customer_external_id": demo_retention.LAPSED}, headers=headers
    ).json()
    path = issued["url"].removeprefix("http://testserver")
    page = client.get(path)
    assert "Snoozy Paws Beds" in page.text and "Why did you stop buying from us?" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    done = client.post(path, data={"csrf_token": token.group(1), "q.reason": ["competitor", "price"]})
    assert done.status_code == 200 and "Thank you" in done.text

    aggregates = client.get(f"/v1/surveys/{seeded.survey_id}/aggregates", headers=headers).json()
    reason = next(q for q in aggregates["questions"] if q["question_id"] == "reason")
    assert aggregates["responses"] == 1 and reason["choices"]["competitor"] == 1 and reason["choices"]["price"] == 1
    listed = client.get("/v1/churn-risk/customers?level=at_risk", headers=headers).json()["data"]
    assert listed[0]["defection_reasons"] == ["competitor", "price"]

    # The answer is a webhook: queued in the outbox and handed to the subscribed endpoint.
    events = outbox.pending(session, beds.id, survey_answers.SURVEY_ANSWERED)
    assert [e.payload["customer_external_id"] for e in events] == [demo_retention.LAPSED]
    deliveries.dispatch(session, now=utcnow())
    session.commit()
    queued = session.exec(
        select(deliveries.WebhookDelivery).where(col(deliveries.WebhookDelivery.endpoint_id) == hook.endpoint.id)
    ).all()
    assert [d.event_id for d in queued] == [events[0].id]

    # Once they withdraw consent, the win-back email carries no partner offer.
    consent.withdraw(
        session, beds.id, demo_retention.LAPSED, method=Method.preference_link, source=Source.preference_page
    )
    session.commit()
    assert win_back(client, headers, demo_retention.LAPSED) == []
