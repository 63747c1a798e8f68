"""Factories for offers: an offering shop and a host with an active partnership, offers, live offers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from partners import offer_actions, partnerships
from partners.db import utcnow
from partners.offer_rules import OfferContent, OfferKind, Targeting
from partners.offers import Offer, OfferSettings
from partners.partnership_rules import Action
from partners.retailers import Tenant
from partners.terms import agreement_digest
from tests.factories_partners import CARE_CATEGORIES, terms_input


def offer_content(**overrides: Any) -> OfferContent:
    """A valid percent-off offer for dog beds, running from yesterday for 30 days."""
    now = utcnow()
    values: dict[str, Any] = {
        "title": "20% off designer dog beds",
        "description": "For customers of our partner.",
        "landing_url": "https://beds.example/partner",
        "kind": OfferKind.percent_off,
        "percent_off": 20.0,
        "currency": "GBP",
        "starts_at": now - timedelta(days=1),
        "ends_at": now + timedelta(days=30),
        "targeting": Targeting(categories=("cat_designer_dog_beds",)),
    }
    values.update(overrides)
    return OfferContent(**values)


def offer_body(**overrides: Any) -> dict[str, Any]:
    """An offer as the API takes it."""
    now = utcnow()
    body: dict[str, Any] = {
        "title": "20% off designer dog beds",
        "landing_url": "https://beds.example/partner",
        "kind": "percent_off",
        "percent_off": 20,
        "currency": "GBP",
        "starts_at": (now - timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=30)).isoformat(),
        "targeting": {"categories": ["cat_designer_dog_beds"]},
    }
    body.update(overrides)
    return body


def actor(tenant: Tenant | str) -> partnerships.Actor:
    return partnerships.Actor(tenant if isinstance(tenant, str) else tenant.id, "usr_test")


@dataclass
class OfferSetup:
    offering: Tenant
    host: Tenant
    partnership_id: str


def partner_up(session: Session, offering: Tenant, host: Tenant, active: bool = True, **terms: Any) -> str:
    """A partnership proposed by `offering` (its offers in `my_offer_categories`), accepted by `host`."""
    proposal = terms_input(**terms)
    created = partnerships.propose(session, actor(offering), host.id, proposal)
    if active:
        accepting = (1, agreement_digest(proposal.agreement_text))
        partnerships.act(session, actor(host), created.id, Action.accept, accepting=accepting)
    session.commit()
    return created.id


@pytest.fixture
def make_offer_setup(session: Session, make_profile: Callable[..., Tenant]) -> Callable[..., OfferSetup]:
    """A bed shop (offering) and a pet-care shop (host) trading in GBP, partnered unless `active=False`."""

    def make(
        offering_categories: Sequence[str] = ("cat_pet_supplies",),
        host_currencies: Sequence[str] = ("GBP",),
        host_blocked: Sequence[str] = (),
        active: bool = True,
    ) -> OfferSetup:
        offering = make_profile(display_name="Snoozy Beds")
        host = make_profile(
            display_name="Pawsome Care",
            categories=CARE_CATEGORIES,
            currencies=list(host_currencies),
            blocked_categories=list(host_blocked),
        )
        partnership_id = partner_up(
            session, offering, host, active=active, my_offer_categories=list(offering_categories)
        )
        return OfferSetup(offering, host, partnership_id)

    return make


@pytest.fixture
def make_offer(session: Session) -> Callable[..., Offer]:
    """A draft offer of `tenant` (content overrides as in `offer_content`)."""

    def make(
        tenant: Tenant | str, *, settings: OfferSettings | None = None, external_id: str | None = None, **content: Any
    ) -> Offer:
        offer = offer_actions.create(
            session, actor(tenant), offer_content(**content), settings or OfferSettings(), external_id
        )
        session.commit()
        return offer

    return make


@pytest.fixture
def make_live_offer(
    session: Session, make_offer_setup: Callable[..., OfferSetup], make_offer: Callable[..., Offer]
) -> Callable[..., tuple[OfferSetup, Offer]]:
    """An offer published to a partnership and approved by the host (serving now unless its window says no)."""

    def make(
        setup: OfferSetup | None = None,
        *,
        settings: OfferSettings | None = None,
        now: datetime | None = None,
        **content: Any,
    ) -> tuple[OfferSetup, Offer]:
        setup = setup or make_offer_setup()
        offer = make_offer(setup.offering, settings=settings, **content)
        offer_actions.publish(session, actor(setup.offering), offer.id, [setup.partnership_id], now=now)
        offer_actions.decide(session, actor(setup.host), offer.id, 1, approve=True, now=now)
        session.commit()
        return setup, offer

    return make
