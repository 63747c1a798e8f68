"""The thank-you offer after a survey: one partner offer through the exchange, only with consent."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from partners.consent_rules import Action
from partners.impressions import Impression
from tests.factories_exchange import Story, consent_to
from tests.flows import bearer


def survey_link(client: TestClient, headers: dict[str, str], thank_you: bool) -> str:
    survey = client.post("/v1/surveys", json={"template": "experience", "thank_you_offer": thank_you}, headers=headers)
    assert survey.status_code == 201, survey.text
    body = {"customer_external_id": "dog-owner-1"}
    link = client.post(f"/v1/surveys/{survey.json()['id']}/links", json=body, headers=headers)
    return str(link.json()["url"]).removeprefix("http://testserver")


def answer(client: TestClient, path: str) -> str:
    form = client.get(path).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    done = client.post(path, data={"csrf_token": token.group(1), "q.recommend": "9"})
    assert done.status_code == 200
    return done.text


@pytest.mark.parametrize("consented", [True, False])
def test_the_thank_you_page_shows_a_partner_offer_only_with_consent(
    client: TestClient,
    session: Session,
    exchange_story: Callable[..., Story],
    token_for: Callable[..., str],
    consented: bool,
) -> None:
    story = exchange_story(consented=consented, shared_code="THANKS10")
    headers = bearer(token_for(["surveys:write"], tenant=story.setup.host))
    page = answer(client, survey_link(client, headers, thank_you=True))
    shown = session.exec(select(Impression).where(col(Impression.tenant_id) == story.setup.host.id)).all()
    if consented:
        assert "20% off designer dog beds" in page and "THANKS10" in page and "A thank-you from" in page
        assert [i.placement for i in shown] == ["survey_thank_you"]
    else:
        assert "A thank-you from" not in page and shown == []


def test_no_offer_unless_the_survey_asks_for_one(
    client: TestClient, session: Session, exchange_story: Callable[..., Story], token_for: Callable[..., str]
) -> None:
    story = exchange_story()
    headers = bearer(token_for(["surveys:write"], tenant=story.setup.host))
    assert "A thank-you from" not in answer(client, survey_link(client, headers, thank_you=False))
    consent_to(session, story.setup.host.id, "dog-owner-1", story.setup.offering.id, Action.withdrawn)
    session.commit()
    assert "A thank-you from" not in answer(client, survey_link(client, headers, thank_you=True))
