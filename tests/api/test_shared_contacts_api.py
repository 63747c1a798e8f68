"""Contact sharing over HTTP: its own scope, the email only when allowed, refusals as problems."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlmodel import Session

from partners import disclosures
from tests.factories_contacts import EMAIL, Sharing
from tests.flows import bearer


def test_the_partner_receives_the_email_under_contacts_read(
    client: TestClient, session: Session, sharing: Callable[..., Sharing], token_for: Callable[..., str]
) -> None:
    case = sharing()
    body = {"impression_id": case.shown.impression_id}
    wrong = client.post("/v1/shared-contacts", json=body, headers=bearer(token_for(["offers:read"], case.partner)))
    assert wrong.status_code == 403
    answer = client.post("/v1/shared-contacts", json=body, headers=bearer(token_for(["contacts:read"], case.partner)))
    assert answer.status_code == 200, answer.text
    assert answer.json()["email"] == EMAIL and answer.json()["host_tenant_id"] == case.host.id
    assert disclosures.recipients(session, case.host.id, case.shown.story.customer.id) == [case.partner.id]


def test_refusals_are_problems_and_share_nothing(
    client: TestClient, session: Session, sharing: Callable[..., Sharing], token_for: Callable[..., str]
) -> None:
    case = sharing(consented=False)
    headers = bearer(token_for(["contacts:read"], case.partner))
    refused = client.post("/v1/shared-contacts", json={"impression_id": case.shown.impression_id}, headers=headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert (problem["code"], problem["param"]) == ("no_contact_consent", "impression_id")
    assert EMAIL not in refused.text
    unknown = client.post("/v1/shared-contacts", json={"impression_id": "imp_nope"}, headers=headers)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_impression")
    assert disclosures.recipients(session, case.host.id, case.shown.story.customer.id) == []
