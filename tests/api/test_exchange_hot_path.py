"""The exchange's hot path over HTTP: on PostgreSQL it runs on the async driver with each host's offers
kept per process, so every change a rule depends on must be seen by the very next answer; its bearer
check runs in the event loop with revocation checked in the first round trip."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.auth import access_tokens
from api.routes.exchange import ExchangeOut
from partners import counters, serving, tokens
from partners.db import utcnow
from partners.offer_rules import Targeting
from partners.partnership_rules import Action as PartnershipAction
from partners.settings import Settings
from partners.terms import agreement_digest
from tests.factories_exchange import Story
from tests.factories_offers import actor
from tests.factories_partners import profile_input, terms_input
from tests.flows import active_signing_key, bearer, forge, jwt_parts
from tests.partners.test_eligibility_rules import BREAKERS, ENDS_IN, Ask

PATH = "/v1/exchange"


def _ask(client: TestClient, token: str, **body: Any) -> Any:
    payload = {"customer_external_id": "dog-owner-1", "placement": "order_confirmation", "region": "GB", **body}
    return client.post(PATH, json=payload, headers=bearer(token))


def _offers(client: TestClient, token: str, **body: Any) -> list[dict[str, Any]]:
    response = _ask(client, token, **body)
    assert response.status_code == 200, response.text
    offers: list[dict[str, Any]] = response.json()["offers"]
    return offers


@pytest.fixture
def story(exchange_story: Callable[..., Story]) -> Story:
    targeting = Targeting(categories=("cat_designer_dog_beds",), regions=("GB",))
    return exchange_story(pool=2, targeting=targeting, ends_at=utcnow() + ENDS_IN)


@pytest.fixture
def host_token(story: Story, token_for: Callable[..., str]) -> str:
    return token_for(["exchange:read"], tenant=story.setup.host)


def test_postgresql_answers_on_the_async_path(app: FastAPI, client: TestClient, story: Story, host_token: str) -> None:
    assert _offers(client, host_token)
    on_postgresql = app.state.engine.dialect.name == "postgresql"
    assert (getattr(app.state, "exchange_pool", None) is not None) == on_postgresql


# Every breaker that changes data (not the clock): the offer was just answered (and its host's rows
# kept), the rule is turned off, and the very next answer no longer shows it.
DATA_BREAKERS = [name for name in BREAKERS if name != "offer window over"]


@pytest.mark.parametrize("rule", DATA_BREAKERS)
def test_a_change_is_seen_by_the_very_next_answer(
    rule: str, client: TestClient, session: Session, story: Story, host_token: str, settings: Settings
) -> None:
    assert _offers(client, host_token, dry_run=True), "shown while every rule holds"
    how = BREAKERS[rule](session, story, settings) or Ask()
    session.commit()
    assert _offers(client, host_token, region=how.region) == [], f"still shown after: {rule}"


def test_new_terms_are_seen_by_the_very_next_answer(
    client: TestClient, session: Session, story: Story, host_token: str
) -> None:
    # One impression this week is under the agreed cap of 2; new terms cap it at 1.
    assert len(_offers(client, host_token)) == 1
    assert _offers(client, host_token, dry_run=True)
    terms = terms_input(cap_per_7_days=1)
    host, offering, pid = actor(story.setup.host), actor(story.setup.offering), story.setup.partnership_id
    serving.act_on_partnership(session, host, pid, PartnershipAction.propose_terms, new_terms=terms)
    serving.act_on_partnership(
        session, offering, pid, PartnershipAction.accept, accepting=(2, agreement_digest(terms.agreement_text))
    )
    session.commit()
    assert _offers(client, host_token, dry_run=True) == []


def test_a_partner_renamed_is_seen_by_the_very_next_answer(
    client: TestClient, session: Session, story: Story, host_token: str
) -> None:
    [before] = _offers(client, host_token, dry_run=True)
    assert before["partner"]["display_name"] == "Snoozy Beds"
    serving.save_profile(session, story.setup.offering.id, profile_input(display_name="Snoozy Beds & Co"))
    session.commit()
    [after] = _offers(client, host_token, dry_run=True)
    assert after["partner"]["display_name"] == "Snoozy Beds & Co"


def test_the_answer_is_exactly_the_documented_model(client: TestClient, story: Story, host_token: str) -> None:
    body = _ask(client, host_token).json()
    model = ExchangeOut.model_validate(body)
    # Written by hand on the hot path: the same JSON the response model would write.
    assert body == json.loads(model.model_dump_json())
    [offer] = body["offers"]
    assert offer["ends_at"].endswith("Z") and offer["code"] and offer["impression_id"].startswith("imp_")


def test_ranking_counters_are_read_fresh_on_every_answer(
    client: TestClient, story: Story, host_token: str, session: Session
) -> None:
    # Ranking counters are read fresh on every answer, even while the offers themselves are kept.
    shown = _offers(client, host_token)
    assert shown
    session.expire_all()
    assert counters.offer_counts(session, story.setup.offering.id, story.offer.id)[0] == 1
    again = _offers(client, host_token)
    assert again and again[0]["score"] != shown[0]["score"]


def test_a_revoked_token_is_refused_on_the_very_next_call(
    client: TestClient, session: Session, story: Story, host_token: str
) -> None:
    assert _offers(client, host_token, dry_run=True)
    _, claims = jwt_parts(host_token)
    tokens.revoke_family(session, claims["sid"], "test")
    session.commit()
    response = _ask(client, host_token)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_a_revoked_token_with_an_idempotency_key_is_refused(
    client: TestClient, session: Session, story: Story, host_token: str
) -> None:
    _, claims = jwt_parts(host_token)
    tokens.revoke_family(session, claims["sid"], "test")
    session.commit()
    payload = {"customer_external_id": "dog-owner-1", "placement": "email"}
    response = client.post(PATH, json=payload, headers={**bearer(host_token), "Idempotency-Key": "k-1"})
    assert response.status_code == 401, response.text


def test_forged_expired_and_missing_tokens_are_refused(
    app: FastAPI, client: TestClient, session: Session, story: Story, host_token: str
) -> None:
    key = active_signing_key(app, session)
    header, claims = jwt_parts(host_token)
    assert _ask(client, forge(key, header, claims)).status_code == 200  # the control: a re-signed copy
    for change in ({"aud": "http://testserver/other"}, {"iss": "https://evil.example"}, {"scope": "offers:read"}):
        assert _ask(client, forge(key, header, {**claims, **change})).status_code in (401, 403), change
    expired = {**claims, "exp": int(time.time()) - 5, "iat": int(time.time()) - 905}
    assert _ask(client, forge(key, header, expired)).status_code == 401
    tampered = host_token[:-4] + ("AAAA" if not host_token.endswith("AAAA") else "BBBB")
    assert _ask(client, tampered).status_code == 401
    missing = client.post(PATH, json={"customer_external_id": "x", "placement": "email"})
    assert missing.status_code == 401
    assert "error=" not in missing.headers["www-authenticate"]
    other = client.post(
        PATH, json={"customer_external_id": "x", "placement": "email"}, headers={"Authorization": "Basic abc"}
    )
    assert other.status_code == 401
    wrong_scope = forge(key, header, {**claims, "scope": "offers:read"})
    assert _ask(client, wrong_scope).status_code == 403
    assert access_tokens.key_id("not-a-token") is False
