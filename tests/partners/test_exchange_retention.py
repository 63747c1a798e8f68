"""The exchange's retention wiring: win-back and appreciation placements, risk and value-band targeting,
and early access shown only before the public sale."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session

from partners import churn_signals, exchange
from partners.consent_rules import Action
from partners.customers import Customer
from partners.db import utcnow
from partners.offer_rules import OfferKind, Targeting
from tests.factories_exchange import Story, buy, consent_to

KEY = b"k" * 32
BEDS = ("cat_designer_dog_beds",)


def ask(session: Session, story: Story, placement: exchange.Placement, **options: object) -> exchange.ExchangeResult:
    now = options.pop("now", utcnow())
    assert isinstance(now, datetime)
    request = exchange.ExchangeRequest(str(options.pop("customer", "dog-owner-1")), placement)
    result = exchange.answer(session, story.setup.host.id, request, now=now, code_key=KEY)
    session.commit()
    return result


def age(session: Session, story: Story, days: int) -> None:
    """Let `days` of silence pass for the daily job."""
    churn_signals.reassess_tenant(session, story.setup.host.id, utcnow() + timedelta(days=days))
    session.commit()


def test_win_back_reaches_customers_at_risk_only_and_only_while_they_consent(
    session: Session, exchange_story: Callable[..., Story]
) -> None:
    story = exchange_story()
    active = ask(session, story, exchange.Placement.win_back)
    assert active.offers == [] and active.decisions["placement_not_at_risk"] == 1
    age(session, story, 160)  # 170 days silent against a 60-day gap: at risk
    assert churn_signals.level_of(session, story.setup.host.id, story.customer.id) == "at_risk"
    assert [s.offer.offer_id for s in ask(session, story, exchange.Placement.win_back).offers] == [story.offer.id]
    consent_to(session, story.setup.host.id, "dog-owner-1", story.setup.offering.id, Action.withdrawn)
    session.commit()
    withdrawn = ask(session, story, exchange.Placement.win_back)
    assert withdrawn.offers == [] and withdrawn.decisions["no_consent"] == 1


def test_offers_aimed_at_a_risk_level_reach_only_it(session: Session, exchange_story: Callable[..., Story]) -> None:
    story = exchange_story(targeting=Targeting(categories=BEDS, risk_levels=("lapsed",)))
    age(session, story, 160)
    refused = ask(session, story, exchange.Placement.win_back)
    assert refused.offers == [] and refused.decisions["targeting_risk_level"] == 1
    age(session, story, 400)
    assert len(ask(session, story, exchange.Placement.win_back).offers) == 1


def _crowd(session: Session, story: Story, make_customer: Callable[..., Customer]) -> None:
    """Twenty-four ordinary customers, so the dog owner's big spend puts them in the top band."""
    for i in range(24):
        make_customer(story.setup.host, f"crowd-{i}")
        buy(session, story.setup.host.id, f"crowd-{i}", "cat_dog_beds", 1000 + 10 * i)
    buy(session, story.setup.host.id, "dog-owner-1", "cat_dog_beds", 90_000, days_ago=5)
    churn_signals.reassess_tenant(session, story.setup.host.id, utcnow())
    session.commit()


def test_appreciation_shows_gifts_to_the_best_customers_only(
    session: Session, exchange_story: Callable[..., Story], make_customer: Callable[..., Customer]
) -> None:
    story = exchange_story(kind=OfferKind.free_gift, percent_off=None)
    before = ask(session, story, exchange.Placement.appreciation)
    assert before.offers == [] and before.decisions["placement_not_top_customer"] == 1  # no bands yet
    _crowd(session, story, make_customer)
    assert len(ask(session, story, exchange.Placement.appreciation).offers) == 1
    ordinary = ask(session, story, exchange.Placement.appreciation, customer="crowd-3")
    assert ordinary.offers == [] and ordinary.decisions["placement_not_top_customer"] == 1


def test_appreciation_refuses_discounts_and_band_targeting_applies_everywhere(
    session: Session, exchange_story: Callable[..., Story], make_customer: Callable[..., Customer]
) -> None:
    story = exchange_story(targeting=Targeting(categories=BEDS, lifetime_value_bands=("top",)))
    _crowd(session, story, make_customer)
    discount = ask(session, story, exchange.Placement.appreciation)
    assert discount.offers == [] and discount.decisions["placement_kind"] == 1
    assert len(ask(session, story, exchange.Placement.email).offers) == 1
    consent_to(session, story.setup.host.id, "crowd-0", story.setup.offering.id, Action.granted, story.notice_id)
    session.commit()
    low = ask(session, story, exchange.Placement.email, customer="crowd-0")
    assert low.decisions.get("targeting_lifetime_value_band") == 1


def test_early_access_is_shown_only_before_the_public_sale(
    session: Session, exchange_story: Callable[..., Story], make_customer: Callable[..., Customer]
) -> None:
    opens = utcnow() + timedelta(days=5)
    story = exchange_story(kind=OfferKind.early_access, percent_off=None, public_sale_starts_at=opens)
    _crowd(session, story, make_customer)
    assert len(ask(session, story, exchange.Placement.appreciation).offers) == 1
    after = ask(session, story, exchange.Placement.appreciation, now=opens + timedelta(hours=1))
    assert after.offers == [] and after.decisions["sale_public"] == 1
