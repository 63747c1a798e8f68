"""Factories for contact sharing: a customer shown a partner's offer, with terms and consent that allow sharing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlmodel import Session

from partners import consent, contact_sharing, partnerships
from partners.consent_rules import Action, Method, Purpose, Source
from partners.customers import upsert_customer
from partners.db import utcnow
from partners.notices import ConsentNotice
from partners.partnership_rules import Action as PartnershipAction
from partners.partnerships import is_active_partner
from partners.retailers import Tenant
from partners.settings import Settings
from partners.terms import agreement_digest
from tests.factories_exchange import Story
from tests.factories_offers import actor
from tests.factories_partners import terms_input
from tests.factories_redemptions import ShownOffer

EMAIL = "jane@example.com"


@dataclass
class Sharing:
    shown: ShownOffer
    settings: Settings

    @property
    def host(self) -> Tenant:
        return self.shown.host

    @property
    def partner(self) -> Tenant:
        return self.shown.offering

    def ask(self, session: Session, partner: Tenant | None = None, impression_id: str | None = None) -> str:
        shared = contact_sharing.share(
            session,
            (partner or self.partner).id,
            impression_id or self.shown.impression_id,
            encryption_key=self.settings.encryption_key.get_secret_value(),
            now=utcnow(),
        )
        session.commit()
        return shared.email


def agree_contact_sharing(session: Session, story: Story) -> None:
    """New terms allowing contact sharing, proposed by the offering side and accepted by the host."""
    offering, host = story.setup.offering, story.setup.host
    new = terms_input(contact_sharing=True, agreement_text="Contact details only with the customer's consent.")
    partnerships.act(
        session, actor(offering), story.setup.partnership_id, PartnershipAction.propose_terms, new_terms=new
    )
    accepting = (2, agreement_digest(new.agreement_text))
    partnerships.act(session, actor(host), story.setup.partnership_id, PartnershipAction.accept, accepting=accepting)
    session.commit()


def grant_contact_sharing(session: Session, host: Tenant, partner_id: str, notice: ConsentNotice) -> None:
    consent.record_event(
        session,
        host.id,
        "dog-owner-1",
        consent.ConsentInput(
            event_id=f"share-{partner_id}",
            action=Action.granted,
            method=Method.checkbox,
            source=Source.account_page,
            occurred_at=utcnow() - timedelta(seconds=1),
            purposes=(Purpose.partner_contact_sharing,),
            partner=partner_id,
            notice_id=notice.id,
        ),
        is_active_partner=is_active_partner,
    )
    session.commit()


@pytest.fixture
def sharing(
    session: Session,
    settings: Settings,
    exchange_story: Callable[..., Story],
    show_offer: Callable[..., ShownOffer],
    make_notice: Callable[..., ConsentNotice],
) -> Callable[..., Sharing]:
    """The bed shop's offer shown to the care shop's customer; by default everything allows sharing."""

    def make(terms: bool = True, consented: bool = True, store_email: bool = True) -> Sharing:
        story = exchange_story()
        host, partner = story.setup.host, story.setup.offering
        upsert_customer(
            session,
            host.id,
            "dog-owner-1",
            email=EMAIL,
            store_email=store_email,
            hash_key=settings.identity_hash_key.get_secret_value().encode(),
            encryption_key=settings.encryption_key.get_secret_value(),
        )
        session.commit()
        shown = show_offer(story)
        if terms:
            agree_contact_sharing(session, story)
        if consented:
            notice = make_notice(host, (Purpose.partner_contact_sharing,), (partner.id,), key="contact")
            grant_contact_sharing(session, host, partner.id, notice)
        return Sharing(shown, settings)

    return make
