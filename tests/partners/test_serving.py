"""Agreements and host rules changed through `serving` take effect on what is served at once."""

from collections.abc import Callable

from sqlmodel import Session

from partners import live_offers, serving
from partners.db import utcnow
from partners.offers import Offer
from partners.partnership_rules import Action
from partners.terms import agreement_digest
from tests.factories_offers import OfferSetup, actor
from tests.factories_partners import CARE_CATEGORIES, profile_input, terms_input

Made = Callable[..., tuple[OfferSetup, Offer]]


def _served(session: Session, setup: OfferSetup) -> list[str]:
    session.expire_all()
    return [row.offer_id for row in live_offers.live_for_host(session, setup.host.id, utcnow())]


def _status(session: Session, setup: OfferSetup, offer: Offer) -> str | None:
    row = session.get(live_offers.LiveOffer, (setup.host.id, setup.partnership_id, offer.id))
    return row.status if row is not None else None


def test_agreeing_terms_that_drop_the_category_stops_the_offer(session: Session, make_live_offer: Made) -> None:
    setup, offer = make_live_offer()
    assert _served(session, setup) == [offer.id]
    narrower = terms_input(my_offer_categories=["cat_cat_supplies"])
    serving.act_on_partnership(
        session, actor(setup.offering), setup.partnership_id, Action.propose_terms, new_terms=narrower
    )
    session.commit()
    assert _served(session, setup) == [offer.id]  # proposed, not agreed: the old terms still hold
    accepting = (2, agreement_digest(narrower.agreement_text))
    serving.act_on_partnership(session, actor(setup.host), setup.partnership_id, Action.accept, accepting=accepting)
    session.commit()
    assert _served(session, setup) == []
    assert _status(session, setup, offer) == "not_allowed"


def test_pause_and_resume_bring_the_offer_back(session: Session, make_live_offer: Made) -> None:
    setup, offer = make_live_offer()
    serving.act_on_partnership(session, actor(setup.host), setup.partnership_id, Action.pause)
    session.commit()
    assert _served(session, setup) == []
    serving.act_on_partnership(session, actor(setup.host), setup.partnership_id, Action.resume)
    session.commit()
    assert _served(session, setup) == [offer.id]


def test_host_blocking_the_category_or_dropping_the_currency_stops_the_offer(
    session: Session, make_live_offer: Made
) -> None:
    setup, offer = make_live_offer()
    blocked = profile_input(
        display_name="Pawsome Care", categories=CARE_CATEGORIES, blocked_categories=["cat_dog_beds"]
    )
    serving.save_profile(session, setup.host.id, blocked)
    session.commit()
    assert _served(session, setup) == []
    serving.save_profile(session, setup.host.id, profile_input(display_name="Pawsome Care", categories=CARE_CATEGORIES))
    session.commit()
    assert _served(session, setup) == [offer.id]
    euros_only = profile_input(display_name="Pawsome Care", categories=CARE_CATEGORIES, currencies=["EUR"])
    serving.save_profile(session, setup.host.id, euros_only)
    session.commit()
    assert _served(session, setup) == []
