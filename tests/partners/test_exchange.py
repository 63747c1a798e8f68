"""The exchange shows an offer only when every rule holds: each rule is turned off in turn."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from partners import exchange, offer_actions, partnerships
from partners.consent_rules import Action
from partners.db import utcnow
from partners.impressions import ExchangeAnswer, Impression, ReceivedImpression
from partners.offer_rules import OfferAction, Targeting
from partners.partnership_rules import Action as PartnershipAction
from partners.retailers import Tenant
from tests.factories_exchange import Story, buy, consent_to
from tests.factories_offers import actor

KEY = b"k" * 32


def ask(session: Session, story: Story, **options: object) -> exchange.ExchangeResult:
    request = exchange.ExchangeRequest(
        customer_external_id=str(options.pop("customer", "dog-owner-1")),
        placement=exchange.Placement.order_confirmation,
        **options,  # type: ignore[arg-type]
    )
    result = exchange.answer(session, story.setup.host.id, request, now=utcnow(), code_key=KEY)
    session.commit()
    return result


def test_a_consenting_dog_owner_is_shown_the_offer_and_it_is_recorded_on_both_sides(
    session: Session, exchange_story: Callable[..., Story]
) -> None:
    story = exchange_story(pool=5)
    result = ask(session, story)
    assert [s.offer.offer_id for s in result.offers] == [story.offer.id]
    shown = result.offers[0]
    assert shown.partner_name == "Snoozy Beds"
    assert shown.code is not None and shown.impression_id is not None
    host_row = session.exec(select(Impression).where(Impression.id == shown.impression_id)).one()
    assert host_row.tenant_id == story.setup.host.id
    assert host_row.customer_id == story.customer.id
    assert host_row.code == shown.code
    partner_row = session.exec(select(ReceivedImpression).where(ReceivedImpression.id == shown.impression_id)).one()
    assert partner_row.tenant_id == story.setup.offering.id
    assert not hasattr(partner_row, "customer_id"), "no customer identity crosses to the offering side"
    answer = session.exec(select(ExchangeAnswer).where(ExchangeAnswer.id == result.answer_id)).one()
    assert answer.shown == 1 and answer.decisions["shown"] == 1
    # The same customer keeps the same single-use code on the next answer.
    assert ask(session, story).offers[0].code == shown.code


def test_no_consent_no_offer(session: Session, exchange_story: Callable[..., Story]) -> None:
    story = exchange_story(consented=False)
    result = ask(session, story)
    assert result.offers == []
    assert result.decisions["no_consent"] == 1


def test_a_withdrawal_stops_offers_at_once(session: Session, exchange_story: Callable[..., Story]) -> None:
    story = exchange_story()
    assert ask(session, story).offers
    consent_to(session, story.setup.host.id, "dog-owner-1", story.setup.offering.id, Action.withdrawn)
    session.commit()
    assert ask(session, story).offers == []


def test_consent_to_another_partner_does_not_count(
    session: Session,
    exchange_story: Callable[..., Story],
    make_tenant: Callable[..., Tenant],
    make_partnership: Callable[..., object],
) -> None:
    story = exchange_story(consented=False)
    other = make_tenant()
    make_partnership(proposer=story.setup.host, partner=other)
    consent_to(session, story.setup.host.id, "dog-owner-1", other.id, Action.granted, story.notice_id)
    session.commit()
    assert ask(session, story).offers == [], "consent to partner X never covers partner Y"
    consent_to(session, story.setup.host.id, "dog-owner-1", "all", Action.granted, story.notice_id)
    session.commit()
    assert ask(session, story).offers, "consent to all active partners covers this one"


def test_a_paused_partnership_stops_its_offers(session: Session, exchange_story: Callable[..., Story]) -> None:
    story = exchange_story()
    partnerships.act(session, actor(story.setup.host), story.setup.partnership_id, PartnershipAction.pause)
    session.commit()
    assert ask(session, story).offers == []


def test_a_paused_offer_stops(session: Session, exchange_story: Callable[..., Story]) -> None:
    story = exchange_story()
    offer_actions.change_state(session, actor(story.setup.offering), story.offer.id, OfferAction.pause)
    session.commit()
    assert ask(session, story).offers == []


def test_an_offer_out_of_its_window_is_not_shown(session: Session, exchange_story: Callable[..., Story]) -> None:
    story = exchange_story(starts_at=utcnow() + timedelta(days=1), ends_at=utcnow() + timedelta(days=5))
    assert ask(session, story).offers == []


def test_frequency_caps_count_every_partner_of_the_host(session: Session, exchange_story: Callable[..., Story]) -> None:
    story = exchange_story()  # terms cap: 2 per 7 days
    assert ask(session, story).offers
    assert ask(session, story).offers
    capped = ask(session, story)
    assert capped.offers == []
    assert capped.decisions["frequency_cap"] == 1


def test_targeting_rules(session: Session, exchange_story: Callable[..., Story]) -> None:
    returning_only = exchange_story(
        targeting=Targeting(categories=("cat_designer_dog_beds",), customer_type="returning")  # type: ignore[arg-type]
    )
    assert ask(session, returning_only).decisions.get("targeting_customer_type") == 1
    buy(session, returning_only.setup.host.id, "dog-owner-1", "cat_dog_beds", 9500, days_ago=3)
    session.commit()
    assert ask(session, returning_only).offers, "a second order makes a returning customer"


def test_offers_outside_the_customers_interests_are_not_shown(
    session: Session, exchange_story: Callable[..., Story]
) -> None:
    story = exchange_story(targeting=Targeting(categories=("cat_cat_litter",)))
    result = ask(session, story)
    assert result.offers == []
    assert result.decisions["not_relevant"] == 1


def test_unknown_customers_get_an_empty_answer(session: Session, exchange_story: Callable[..., Story]) -> None:
    story = exchange_story()
    result = ask(session, story, customer="nobody")
    assert result.offers == []
    assert result.answer_id is not None


def test_a_dry_run_records_and_reserves_nothing(session: Session, exchange_story: Callable[..., Story]) -> None:
    story = exchange_story(pool=3)
    result = ask(session, story, dry_run=True)
    assert len(result.offers) == 1
    assert result.offers[0].code is None and result.offers[0].impression_id is None
    assert result.answer_id is None
    assert session.exec(select(Impression)).all() == []
    assert session.exec(select(ExchangeAnswer)).all() == []


def test_an_empty_code_pool_is_skipped(session: Session, exchange_story: Callable[..., Story]) -> None:
    story = exchange_story(pool=1)
    assert ask(session, story).offers
    story_two = story
    from tests.factories_exchange import consent_to as grant

    session.add(type(story.customer)(tenant_id=story.setup.host.id, external_id="cat-owner-2"))
    session.commit()
    buy(session, story.setup.host.id, "cat-owner-2", "cat_dog_beds", 9000)
    grant(session, story.setup.host.id, "cat-owner-2", story.setup.offering.id, Action.granted, story.notice_id)
    session.commit()
    second = ask(session, story_two, customer="cat-owner-2")
    assert second.offers == []
    assert second.decisions["no_code"] == 1


@pytest.mark.parametrize("limit", [1, 2])
def test_one_offer_per_partner_unless_asked(
    session: Session, exchange_story: Callable[..., Story], make_offer: Callable[..., object], limit: int
) -> None:
    story = exchange_story()
    second = make_offer(story.setup.offering, title="Cat beds too", targeting=Targeting(categories=("cat_dog_beds",)))
    offer_actions.publish(session, actor(story.setup.offering), second.id, [story.setup.partnership_id])  # type: ignore[attr-defined]
    offer_actions.decide(session, actor(story.setup.host), second.id, 1, approve=True)  # type: ignore[attr-defined]
    session.commit()
    assert len(ask(session, story, dry_run=True).offers) == 1
    both = ask(session, story, dry_run=True, one_per_partner=False, limit=limit)
    assert len(both.offers) == limit
