"""Factories for the exchange: a host's customer with purchases and consent, and a live partner offer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session

from partners import consent, purchases
from partners.consent_rules import Action, Method, Purpose, Source
from partners.customers import Customer
from partners.db import utcnow
from partners.notices import ConsentNotice
from partners.offer_actions import generate_codes
from partners.offer_rules import CodeMode
from partners.offers import Offer, OfferSettings
from partners.partnerships import is_active_partner
from tests.factories_offers import OfferSetup, actor

_orders = iter(range(1, 10**9))


def buy(session: Session, tenant_id: str, external_id: str, category: str, price: int, days_ago: int = 10) -> None:
    purchases.record_purchase(
        session,
        tenant_id,
        external_id,
        purchases.PurchaseInput(
            order_id=f"ord-{next(_orders)}",
            ordered_at=utcnow() - timedelta(days=days_ago),
            currency="GBP",
            lines=(purchases.LineInput(category, price, 1, "physical"),),  # type: ignore[arg-type]
        ),
    )


def consent_to(
    session: Session, tenant_id: str, external_id: str, partner: str | None, action: Action, notice: str | None = None
) -> None:
    consent.record_event(
        session,
        tenant_id,
        external_id,
        consent.ConsentInput(
            event_id=f"evt-{next(_orders)}",
            action=action,
            method=Method.checkbox,
            source=Source.checkout,
            occurred_at=utcnow() - timedelta(seconds=1),
            purposes=(Purpose.partner_offers,),
            partner=partner,
            notice_id=notice if action is Action.granted else None,
        ),
        is_active_partner=is_active_partner,
    )


@dataclass
class Story:
    setup: OfferSetup
    offer: Offer
    customer: Customer
    notice_id: str


@pytest.fixture
def exchange_story(
    session: Session,
    make_live_offer: Callable[..., tuple[OfferSetup, Offer]],
    make_customer: Callable[..., Customer],
    make_notice: Callable[..., ConsentNotice],
) -> Callable[..., Story]:
    """The bed shop's live offer at the care shop, and a care-shop dog owner who consented (unless told not)."""

    def make(consented: bool = True, pool: int = 0, shared_code: str | None = None, **content: Any) -> Story:
        settings = OfferSettings(code_mode=CodeMode.pool) if pool else None
        if shared_code is not None:
            settings = OfferSettings(code_mode=CodeMode.shared, shared_code=shared_code)
        setup, offer = make_live_offer(settings=settings, **content)
        if pool:
            generate_codes(session, actor(setup.offering), offer.id, pool)
        customer = make_customer(tenant=setup.host, external_id="dog-owner-1")
        buy(session, setup.host.id, "dog-owner-1", "cat_dog_beds", 9000)
        notice = make_notice(setup.host)
        if consented:
            consent_to(session, setup.host.id, "dog-owner-1", setup.offering.id, Action.granted, notice.id)
        session.commit()
        return Story(setup, offer, customer, notice.id)

    return make
