"""Holdouts over HTTP: setting shares (bad ones refused), per-offer precedence, the report's plain verdicts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from partners import holdouts
from tests.factories_exchange import Story
from tests.flows import bearer

SCOPES = ["partnerships:write", "offers:write", "reports:read", "exchange:read"]


@pytest.fixture
def story(exchange_story: Callable[..., Story]) -> Story:
    return exchange_story()


@pytest.fixture
def headers(story: Story, token_for: Callable[..., str]) -> dict[str, str]:
    return bearer(token_for(SCOPES, tenant=story.setup.host))


def put(client: TestClient, headers: dict[str, str], path: str, share: Any) -> Any:
    return client.put(path, json={"share_percent": share}, headers=headers)


@pytest.mark.parametrize("share", [-5, 50.5, 75, 12.345])
def test_shares_outside_0_to_50_percent_are_refused_and_change_nothing(
    client: TestClient, session: Session, story: Story, headers: dict[str, str], share: float
) -> None:
    refused = put(client, headers, f"/v1/partnerships/{story.setup.partnership_id}/holdout", share)
    assert refused.status_code == 422 and refused.json()["param"] == "share_percent"
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert client.get("/v1/holdouts", headers=headers).json()["data"] == []


def test_a_new_share_ends_the_running_holdout_and_zero_stops_it(
    client: TestClient, story: Story, headers: dict[str, str]
) -> None:
    path = f"/v1/partnerships/{story.setup.partnership_id}/holdout"
    first = put(client, headers, path, 10).json()["running"]
    assert first["share_percent"] == 10.0 and first["offer_id"] is None
    assert put(client, headers, path, 10).json()["running"]["id"] == first["id"]
    second = put(client, headers, path, 20).json()["running"]
    assert second["id"] != first["id"]
    assert put(client, headers, path, 0).json()["running"] is None
    listed = client.get("/v1/holdouts", headers=headers).json()["data"]
    assert [h["id"] for h in listed] == [first["id"], second["id"]] and all(h["ended_at"] for h in listed)


def test_an_offer_holdout_takes_precedence_and_holds_the_customer_out(
    client: TestClient, session: Session, story: Story, headers: dict[str, str], settings: Any
) -> None:
    put(client, headers, f"/v1/partnerships/{story.setup.partnership_id}/holdout", 0.01)
    offer = put(client, headers, f"/v1/partner-offers/{story.offer.id}/holdout", 50).json()["running"]
    assert offer["offer_id"] == story.offer.id
    key = settings.secret_key.get_secret_value().encode()
    held = holdouts.is_held_out(key, story.setup.host.id, offer["id"], story.customer.id, 5000)
    answer = client.post(
        "/v1/exchange", json={"customer_external_id": "dog-owner-1", "placement": "email"}, headers=headers
    ).json()
    assert (answer["offers"] == []) == held
    unknown = put(client, headers, "/v1/partner-offers/off_01m8nothingherenothinghere/holdout", 10)
    assert unknown.status_code == 404


def test_the_report_says_plainly_when_the_sample_is_too_small(
    client: TestClient, story: Story, headers: dict[str, str]
) -> None:
    holdout = put(client, headers, f"/v1/partnerships/{story.setup.partnership_id}/holdout", 10).json()["running"]
    client.post("/v1/exchange", json={"customer_external_id": "dog-owner-1", "placement": "email"}, headers=headers)
    report = client.get(f"/v1/reports/holdouts/{holdout['id']}?currency=GBP&window_days=1", headers=headers)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["lift"]["verdict"] == "too_small" and body["lift"]["repeat_rate"] is None
    assert body["lift"]["message"].startswith("Too few customers to tell")
    assert body["still_in_window"] == 1 and body["shown"]["customers"] + body["held_out"]["customers"] == 0
    bad = client.get(f"/v1/reports/holdouts/{holdout['id']}?currency=GBP&from=2026-01-01T00:00:00", headers=headers)
    assert bad.status_code == 422 and bad.json()["param"] == "from"
