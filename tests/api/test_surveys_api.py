"""Surveys over HTTP: templates and own questions, versions, links, the page, answers, aggregates, webhook."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from api.survey_links import LINK_PURPOSE
from partners import outbox, survey_answers
from partners.crypto import sign
from partners.customers import Customer
from partners.db import utcnow
from partners.retailers import Tenant
from partners.settings import Settings
from tests.flows import bearer

SCOPES = ["surveys:write", "surveys:read", "customers:write"]


class Shop:
    def __init__(self, client: TestClient, tenant: Tenant, headers: dict[str, str]) -> None:
        self.client, self.tenant, self.headers = client, tenant, headers

    def call(self, method: str, path: str, json: Any = None) -> Any:
        return self.client.request(method, path, json=json, headers=self.headers)

    def survey(self, **body: Any) -> dict[str, Any]:
        created = self.call("POST", "/v1/surveys", body or {"template": "experience"})
        assert created.status_code == 201, created.text
        return dict(created.json())

    def link(self, survey_id: str, external_id: str = "c-1", ttl_days: int = 30) -> str:
        issued = self.call(
            "POST", f"/v1/surveys/{survey_id}/links", {"customer_external_id": external_id, "ttl_days": ttl_days}
        )
        assert issued.status_code == 201, issued.text
        return str(issued.json()["url"]).removeprefix("http://testserver")


@pytest.fixture
def shop(
    client: TestClient,
    make_tenant: Callable[..., Tenant],
    make_customer: Callable[..., Customer],
    token_for: Callable[..., str],
) -> Shop:
    tenant = make_tenant("Snoozy <Paws>")
    make_customer(tenant, "c-1")
    make_customer(tenant, "c-2")
    return Shop(client, tenant, bearer(token_for(SCOPES, tenant=tenant)))


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def answer(client: TestClient, path: str, fields: dict[str, Any]) -> Any:
    form = client.get(path)
    assert form.status_code == 200, form.text
    return client.post(path, data={"csrf_token": csrf(form.text), **fields})


def stored_responses(session: Session, tenant: Tenant) -> int:
    session.expire_all()
    query = select(func.count()).select_from(survey_answers.SurveyResponse)
    return session.exec(query.where(col(survey_answers.SurveyResponse.tenant_id) == tenant.id)).one()


def test_a_template_survey_is_answered_once_and_aggregated(client: TestClient, session: Session, shop: Shop) -> None:
    survey = shop.survey()
    assert survey["purpose"] == "experience" and len(survey["questions"]) == 5 and survey["version"] == 1
    page = client.get(shop.link(survey["id"]))
    text = page.text
    assert page.status_code == 200 and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "Snoozy &lt;Paws&gt;" in text and "<Paws>" not in text
    assert text.count("<fieldset>") == 4 and text.count("<legend>") == 4 and '<label for="q-anything_else">' in text
    assert 'type="radio" name="q.recommend" value="10"' in text and "<script" not in text
    assert "samesite=strict" in page.headers["set-cookie"].lower()

    for external_id, score, found in (("c-1", "10", "search"), ("c-2", "3", "search")):
        done = answer(client, shop.link(survey["id"], external_id), {"q.recommend": score, "q.found_us": found})
        assert done.status_code == 200 and "Thank you" in done.text
    aggregates = shop.call("GET", f"/v1/surveys/{survey['id']}/aggregates").json()
    assert aggregates["responses"] == 2
    by_id = {q["question_id"]: q for q in aggregates["questions"]}
    assert by_id["found_us"]["choices"]["search"] == 2 and by_id["found_us"]["answered"] == 2
    assert by_id["recommend"]["scores"]["10"] == 1 and by_id["recommend"]["scores"]["3"] == 1
    assert by_id["recommend"]["net_promoter"] == {"promoters": 1, "passives": 0, "detractors": 1, "score": 0.0}
    assert by_id["checkout"]["answered"] == 0
    responses = shop.call("GET", f"/v1/surveys/{survey['id']}/responses").json()["data"]
    assert [r["customer_external_id"] for r in responses] == ["c-1", "c-2"]
    assert {"question_id": "recommend", "choices": [], "score": 10, "text": None} in responses[0]["answers"]
    events = outbox.pending(session, shop.tenant.id, survey_answers.SURVEY_ANSWERED)
    assert len(events) == 2 and events[0].payload["customer_external_id"] == "c-1"
    assert events[0].payload["survey_id"] == survey["id"] and events[0].recipient == shop.tenant.id


def test_a_second_answer_on_the_same_link_is_refused(client: TestClient, session: Session, shop: Shop) -> None:
    path = shop.link(shop.survey()["id"])
    form = client.get(path)
    token = csrf(form.text)
    assert client.post(path, data={"csrf_token": token, "q.recommend": "8"}).status_code == 200
    again = client.post(path, data={"csrf_token": token, "q.recommend": "2"})
    assert again.status_code == 409 and "answered this survey already" in again.text
    assert client.get(path).status_code == 409
    assert stored_responses(session, shop.tenant) == 1


def test_tampered_and_expired_links_show_a_clear_page_and_store_nothing(
    client: TestClient, session: Session, settings: Settings, shop: Shop
) -> None:
    survey = shop.survey()
    path = shop.link(survey["id"])
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    for bad in (tampered, "/surveys/not-a-token"):
        assert client.get(bad).status_code == 404
        refused = client.post(bad, data={"q.recommend": "9"})
        assert refused.status_code == 404 and "not valid any more" in refused.text
    # Signed, but the stored link expired (or never existed).
    issued = shop.call("POST", f"/v1/surveys/{survey['id']}/links", {"customer_external_id": "c-2"}).json()
    link = session.get(survey_answers.SurveyLink, (shop.tenant.id, issued["id"]))
    assert link is not None
    link.expires_at = utcnow() - timedelta(seconds=1)
    session.add(link)
    session.commit()
    expired = issued["url"].removeprefix("http://testserver")
    assert client.post(expired, data={"q.recommend": "9"}).status_code == 404
    forged = sign(settings.secret_key.get_secret_value(), LINK_PURPOSE, {"t": shop.tenant.id, "l": "sln_x"}, 60)
    assert client.get(f"/surveys/{forged}").status_code == 404
    assert stored_responses(session, shop.tenant) == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"q.colour": "red", "q.recommend": "9"}, "no such question"),
        ({"q.recommend": "11"}, "from 0 to 10"),
        ({"q.found_us": "billboard"}, "not one of the choices"),
    ],
)
def test_bad_answers_re_show_the_form_and_store_nothing(
    client: TestClient, session: Session, shop: Shop, fields: dict[str, str], message: str
) -> None:
    path = shop.link(shop.survey()["id"])
    refused = answer(client, path, fields)
    assert refused.status_code == 400 and message in refused.text and 'role="alert"' in refused.text
    assert stored_responses(session, shop.tenant) == 0
    assert answer(client, path, {"q.recommend": "9"}).status_code == 200


def test_a_post_without_the_pages_csrf_token_changes_nothing(client: TestClient, session: Session, shop: Shop) -> None:
    path = shop.link(shop.survey()["id"])
    client.get(path)
    assert client.post(path, data={"csrf_token": "forged", "q.recommend": "9"}).status_code == 403
    client.cookies.clear()
    assert client.post(path, data={"q.recommend": "9"}).status_code == 403
    assert stored_responses(session, shop.tenant) == 0


def test_defection_answers_are_attached_to_the_customer(client: TestClient, session: Session, shop: Shop) -> None:
    survey = shop.survey(template="defection")
    assert survey["purpose"] == "defection"
    path = shop.link(survey["id"])
    missing = answer(client, path, {"q.details": "hm"})
    assert missing.status_code == 400 and "Please answer this question" in missing.text
    done = answer(client, path, {"q.reason": ["price", "competitor"], "q.details": "Found it cheaper"})
    assert done.status_code == 200
    customer = session.exec(select(Customer).where(col(Customer.external_id) == "c-1")).one()
    attached = survey_answers.defection_of(session, shop.tenant.id, customer.id)
    assert attached is not None and attached.reasons == ["price", "competitor"]
    assert attached.comment == "Found it cheaper"
    aggregates = shop.call("GET", f"/v1/surveys/{survey['id']}/aggregates").json()
    reason = aggregates["questions"][0]
    assert reason["choices"]["price"] == 1 and reason["choices"]["competitor"] == 1 and reason["answered"] == 1


def question(n: int, **changes: Any) -> dict[str, Any]:
    body = {
        "id": f"q{n}",
        "kind": "single_choice",
        "text": f"Question {n}?",
        "choices": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}],
    }
    return {**body, **changes}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"definition": {"title": "Long", "questions": [question(n) for n in range(6)]}}, "questions"),
        ({"definition": {"title": "Empty", "questions": [question(1, choices=[])]}}, "questions.0.choices"),
        (
            {
                "definition": {
                    "title": "Blank",
                    "questions": [question(1, choices=[{"id": "a", "label": ""}, {"id": "b", "label": "B"}])],
                }
            },
            "questions.0.choices.0.label",
        ),
        ({"template": "nope"}, "template"),
        ({}, "template"),
        ({"template": "experience", "definition": {"title": "x", "questions": [question(1)]}}, "template"),
    ],
)
def test_bad_surveys_are_refused_naming_the_field(
    shop: Shop, session: Session, body: dict[str, Any], param: str
) -> None:
    refused = shop.call("POST", "/v1/surveys", body)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["param"] == param
    assert shop.call("GET", "/v1/surveys").json()["data"] == []


def test_versions_keep_old_links_on_their_questions(client: TestClient, shop: Shop) -> None:
    survey = shop.survey(definition={"title": "Quick", "questions": [question(1)]})
    old = shop.link(survey["id"])
    renamed = shop.call("POST", f"/v1/surveys/{survey['id']}/versions", {"title": "Quick", "questions": [question(2)]})
    assert renamed.status_code == 201 and renamed.json()["version"] == 2
    assert answer(client, old, {"q.q1": "a"}).status_code == 200
    assert answer(client, shop.link(survey["id"], "c-2"), {"q.q2": "b"}).status_code == 200
    first = shop.call("GET", f"/v1/surveys/{survey['id']}/aggregates?version=1").json()
    latest = shop.call("GET", f"/v1/surveys/{survey['id']}/aggregates").json()
    assert first["questions"][0]["choices"] == {"a": 1, "b": 0} and latest["questions"][0]["choices"] == {
        "a": 0,
        "b": 1,
    }
    assert shop.call("GET", f"/v1/surveys/{survey['id']}?version=1").json()["questions"][0]["id"] == "q1"


def test_links_need_a_known_customer_and_a_sane_lifetime(shop: Shop) -> None:
    survey = shop.survey()
    unknown = shop.call("POST", f"/v1/surveys/{survey['id']}/links", {"customer_external_id": "nobody"})
    assert unknown.status_code == 404 and unknown.json()["param"] == "external_id"
    too_long = shop.call("POST", f"/v1/surveys/{survey['id']}/links", {"customer_external_id": "c-1", "ttl_days": 91})
    assert too_long.status_code == 422
