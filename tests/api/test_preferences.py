"""The customer's preference page: signed link, one-click withdrawal, CSRF, GPC, no framing."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.preference_links import CSRF_COOKIE, CSRF_PURPOSE, LINK_PURPOSE, issue_link
from partners import consent, consent_ledger, disclosures, outbox, privacy
from partners.consent import ConsentInput
from partners.consent_rules import ALL_PARTNERS, Action, Method, Purpose, Source
from partners.crypto import sign
from partners.customers import Customer
from partners.notices import ConsentNotice
from partners.partnerships import is_active_partner
from partners.retailers import Tenant
from partners.settings import Settings


@dataclass
class Page:
    tenant: Tenant
    partner: Tenant
    customer: Customer
    path: str


@pytest.fixture
def page(
    session: Session,
    settings: Settings,
    make_tenant: Callable[..., Tenant],
    make_partner: Callable[..., Tenant],
    make_notice: Callable[..., ConsentNotice],
    make_customer: Callable[..., Customer],
) -> Page:
    """A customer who granted partner offers to all partners and overlap analysis to one."""
    tenant = make_tenant("Bed & <Basket>")
    partner = make_partner(tenant, name="Pet Care Co")
    notice = make_notice(tenant)
    customer = make_customer(tenant, "c-1")
    for event_id, purpose, scope in (
        ("g-1", Purpose.partner_offers, ALL_PARTNERS),
        ("g-2", Purpose.overlap_analysis, partner.id),
    ):
        grant = ConsentInput(
            event_id,
            Action.granted,
            Method.checkbox,
            Source.checkout,
            datetime(2025, 1, 2, tzinfo=UTC),
            (purpose,),
            scope,
            notice.id,
        )
        consent.record_event(session, tenant.id, "c-1", grant, is_active_partner=is_active_partner)
    disclosures.record_disclosure(session, tenant.id, customer.id, partner.id)
    session.commit()
    url = issue_link(settings, tenant.id, customer.id, 30).url
    return Page(tenant, partner, customer, url.removeprefix("http://testserver"))


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def statuses(session: Session, page: Page) -> dict[tuple[str, str], str]:
    session.expire_all()
    rows = consent_ledger.current_state(session, page.tenant.id, page.customer.id)
    return {(r.purpose, r.partner): r.status for r in rows}


def test_the_page_shows_consents_and_may_not_be_framed(client: TestClient, page: Page) -> None:
    response = client.get(page.path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    text = response.text
    assert "Bed &amp; &lt;Basket&gt;" in text and "<Basket>" not in text
    assert "Offers from partner shops" in text and "Pet Care Co" in text
    assert text.count(">Withdraw</button>") == 2
    assert "plp_pref_csrf" in response.headers["set-cookie"]
    assert "samesite=strict" in response.headers["set-cookie"].lower()


def test_one_click_withdraws_and_tells_the_partner(client: TestClient, session: Session, page: Page) -> None:
    form = client.get(page.path)
    response = client.post(
        page.path,
        data={"csrf_token": csrf(form.text), "purpose": "partner_offers", "partner": "all"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{page.path}?done=1"
    states = statuses(session, page)
    assert states[("partner_offers", "all")] == "withdrawn"
    assert states[("overlap_analysis", page.partner.id)] == "granted"
    told = outbox.pending(session, page.tenant.id, outbox.CONSENT_WITHDRAWN)
    assert [e.payload["partner_id"] for e in told] == [page.partner.id]
    events = consent_ledger.all_events(session, page.tenant.id, page.customer.id)
    assert (events[-1].method, events[-1].source) == ("preference_link", "preference_page")
    after = client.get(response.headers["location"])
    assert "Done" in after.text and after.text.count(">Withdraw</button>") == 1


def test_withdraw_everything(client: TestClient, session: Session, page: Page) -> None:
    form = client.get(page.path)
    client.post(page.path, data={"csrf_token": csrf(form.text), "purpose": "all", "partner": "all"})
    assert set(statuses(session, page).values()) == {"withdrawn"}


@pytest.mark.parametrize("token", ["", "forged"])
def test_a_post_without_the_right_csrf_token_changes_nothing(
    client: TestClient, session: Session, page: Page, token: str
) -> None:
    client.get(page.path)
    response = client.post(page.path, data={"csrf_token": token, "purpose": "all", "partner": "all"})
    assert response.status_code == 403
    assert "withdrawn" not in statuses(session, page).values()


def test_a_csrf_token_for_another_customer_is_refused(
    client: TestClient, session: Session, settings: Settings, page: Page
) -> None:
    client.get(page.path)
    nonce = client.cookies.get(CSRF_COOKIE)
    assert nonce
    token = sign(settings.secret_key.get_secret_value(), CSRF_PURPOSE, {"n": nonce, "c": "cus_someone_else"}, 600)
    response = client.post(page.path, data={"csrf_token": token, "purpose": "all", "partner": "all"})
    assert response.status_code == 403
    assert "withdrawn" not in statuses(session, page).values()


def test_global_privacy_control_withdraws_every_partner_purpose(
    client: TestClient, session: Session, page: Page
) -> None:
    response = client.get(page.path, headers={"Sec-GPC": "1"})
    assert response.status_code == 200
    assert "Global Privacy Control" in response.text
    assert set(statuses(session, page).values()) == {"withdrawn"}
    events = consent_ledger.all_events(session, page.tenant.id, page.customer.id)
    assert events[-1].method == "global_privacy_control"
    count = len(events)
    client.get(page.path, headers={"Sec-GPC": "1"})  # nothing left to withdraw: no new events
    assert len(consent_ledger.all_events(session, page.tenant.id, page.customer.id)) == count


def test_forged_and_expired_links_are_refused(client: TestClient, settings: Settings, page: Page) -> None:
    expired = sign(settings.secret_key.get_secret_value(), LINK_PURPOSE, {"t": page.tenant.id, "c": "cus_x"}, -10)
    for path in (page.path + "x", "/preferences/" + expired, "/preferences/nonsense"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert client.post(path, data={"csrf_token": "x", "purpose": "all", "partner": "all"}).status_code == 404


def test_after_erasure_the_link_shows_nothing(
    client: TestClient, session: Session, settings: Settings, page: Page
) -> None:
    privacy.erase_customer(
        session, page.tenant.id, "c-1", hash_key=settings.identity_hash_key.get_secret_value().encode()
    )
    session.commit()
    response = client.get(page.path)
    assert response.status_code == 404
    assert "no data" in response.text


def test_unknown_choices_are_refused(client: TestClient, session: Session, page: Page) -> None:
    form = client.get(page.path)
    response = client.post(page.path, data={"csrf_token": csrf(form.text), "purpose": "marketing", "partner": "all"})
    assert response.status_code == 400
    response = client.post(page.path, data={"csrf_token": csrf(form.text), "purpose": "all", "partner": "nobody"})
    assert response.status_code == 400
    assert "withdrawn" not in statuses(session, page).values()


def test_global_privacy_control_on_a_form_post_withdraws_everything(
    client: TestClient, session: Session, page: Page
) -> None:
    form = client.get(page.path)
    data = {"csrf_token": csrf(form.text), "purpose": "overlap_analysis", "partner": page.partner.id}
    response = client.post(page.path, data=data, headers={"Sec-GPC": "1"}, follow_redirects=False)
    assert response.status_code == 303
    assert set(statuses(session, page).values()) == {"withdrawn"}
