"""Audience overlap over HTTP: consenting customers only, suppressed below 50, replayed until its refresh."""

import random
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.routes.partnerships import overlap_randomness
from partners import consent
from partners.consent_rules import Action, Method, Purpose, Source
from partners.customers import Customer
from partners.db import utcnow
from partners.notices import ConsentNotice
from partners.overlap import MAX_RELEASES
from partners.partnerships import Partnership, is_active_partner
from partners.retailers import Tenant
from tests.factories_partners import CARE_CATEGORIES


@pytest.fixture(autouse=True)
def seeded_noise(app: FastAPI) -> None:
    # Each app is built per test, so the override goes with it.
    app.dependency_overrides[overlap_randomness] = lambda: random.Random(20261202)


def _audience(
    session: Session,
    make_customer: Callable[..., Customer],
    notice: ConsentNotice,
    tenant: Tenant,
    emails: range,
    consenting: bool = True,
) -> None:
    for n in emails:
        make_customer(tenant=tenant, external_id=f"c{n}", email=f"Person.{n}@Example.com")
        if consenting:
            consent.record_event(
                session,
                tenant.id,
                f"c{n}",
                consent.ConsentInput(
                    event_id=f"ov-{n}",
                    action=Action.granted,
                    method=Method.checkbox,
                    source=Source.checkout,
                    occurred_at=utcnow() - timedelta(seconds=1),
                    purposes=(Purpose.overlap_analysis,),
                    partner="all",
                    notice_id=notice.id,
                ),
                is_active_partner=is_active_partner,
            )
    session.commit()


def test_overlap_counts_consenting_customers_and_suppresses_small_sets(
    client: TestClient,
    session: Session,
    make_profile: Callable[..., Tenant],
    make_partnership: Callable[..., Partnership],
    make_customer: Callable[..., Customer],
    make_notice: Callable[..., ConsentNotice],
    token_for: Callable[..., str],
) -> None:
    beds = make_profile(display_name="Beds", overlap_opt_in=True)
    care = make_profile(display_name="Care", categories=CARE_CATEGORIES, overlap_opt_in=True)
    ptn = make_partnership(proposer=beds, partner=care)
    beds_notice, care_notice = make_notice(beds), make_notice(care)
    _audience(session, make_customer, beds_notice, beds, range(0, 40))
    _audience(session, make_customer, care_notice, care, range(0, 40))
    headers = {"Authorization": f"Bearer {token_for(['partners:read'], tenant=beds)}"}
    small = client.get(f"/v1/partnerships/{ptn.id}/overlap", headers=headers).json()
    assert small["suppressed"] is True and small["overlap"] is None
    assert small["display"] == "fewer than 50"


def test_overlap_above_the_minimum_is_shown_rounded_and_replayed(
    client: TestClient,
    session: Session,
    make_profile: Callable[..., Tenant],
    make_partnership: Callable[..., Partnership],
    make_customer: Callable[..., Customer],
    make_notice: Callable[..., ConsentNotice],
    token_for: Callable[..., str],
) -> None:
    beds = make_profile(display_name="Beds", overlap_opt_in=True)
    care = make_profile(display_name="Care", categories=CARE_CATEGORIES, overlap_opt_in=True)
    ptn = make_partnership(proposer=beds, partner=care)
    beds_notice, care_notice = make_notice(beds), make_notice(care)
    _audience(session, make_customer, beds_notice, beds, range(0, 150))
    _audience(session, make_customer, care_notice, care, range(50, 200))
    _audience(session, make_customer, care_notice, care, range(200, 260), consenting=False)
    beds_view = client.get(
        f"/v1/partnerships/{ptn.id}/overlap",
        headers={"Authorization": f"Bearer {token_for(['partners:read'], tenant=beds)}"},
    ).json()
    assert beds_view["suppressed"] is False
    assert beds_view["overlap"] % 10 == 0 and abs(beds_view["overlap"] - 100) <= 40
    again = client.get(
        f"/v1/partnerships/{ptn.id}/overlap",
        headers={"Authorization": f"Bearer {token_for(['partners:read'], tenant=beds)}"},
    ).json()
    assert again == beds_view, "one release per refresh: repeating the question yields nothing new"
    assert beds_view["releases_left"] == MAX_RELEASES - 1 and beds_view["next_release_at"] > beds_view["as_of"]
    care_view = client.get(
        f"/v1/partnerships/{ptn.id}/overlap",
        headers={"Authorization": f"Bearer {token_for(['partners:read'], tenant=care)}"},
    ).json()
    assert care_view["overlap"] == beds_view["overlap"]
    assert care_view["share_of_mine"] == beds_view["share_of_theirs"]


def test_overlap_needs_both_sides_to_opt_in(
    client: TestClient,
    make_profile: Callable[..., Tenant],
    make_partnership: Callable[..., Partnership],
    token_for: Callable[..., str],
) -> None:
    beds = make_profile(display_name="Beds", overlap_opt_in=True)
    care = make_profile(display_name="Care", categories=CARE_CATEGORIES, overlap_opt_in=False)
    ptn = make_partnership(proposer=beds, partner=care)
    response = client.get(
        f"/v1/partnerships/{ptn.id}/overlap",
        headers={"Authorization": f"Bearer {token_for(['partners:read'], tenant=beds)}"},
    )
    assert response.status_code == 409
    assert response.json()["param"] == "overlap_opt_in"
