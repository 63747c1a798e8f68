"""Reach forecast: the host's customers an offer could reach now, counted like the exchange, shown as an aggregate."""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlmodel import Session

from partners import forecast, impressions, interest_store, interests, offers, partnerships
from partners.consent_rules import Action
from partners.customers import get_customer
from partners.db import utcnow
from partners.ids import new_id
from partners.offer_rules import CustomerType, Targeting
from partners.offers import Offer
from partners.partnership_rules import Action as PartnershipAction
from partners.partnerships import Partnership
from tests.factories_exchange import buy, consent_to
from tests.factories_offers import OfferSetup, actor


@dataclass
class World:
    setup: OfferSetup
    notice_id: str

    def customer(
        self,
        session: Session,
        make_customer: Callable[..., object],
        external_id: str,
        *,
        consents: bool = True,
        category: str = "cat_dog_beds",
        orders: int = 1,
    ) -> object:
        host = self.setup.host
        created = make_customer(tenant=host, external_id=external_id)
        for _ in range(orders):
            buy(session, host.id, external_id, category, 9000)
        if consents:
            consent_to(session, host.id, external_id, self.setup.offering.id, Action.granted, self.notice_id)
        session.commit()
        return created


@pytest.fixture
def world(make_offer_setup: Callable[..., OfferSetup], make_notice: Callable[..., object]) -> World:
    setup = make_offer_setup()
    return World(setup, make_notice(setup.host).id)  # type: ignore[attr-defined]


def exact(session: Session, world: World, offer: Offer) -> int:
    partnership = session.get(Partnership, (world.setup.offering.id, world.setup.partnership_id))
    assert partnership is not None
    content = offers.content_of(offers.latest_version(session, offer))
    return forecast.eligible_customers(session, partnership, content, utcnow())


def ask(session: Session, world: World, offer: Offer) -> forecast.Forecast:
    return forecast.forecast(session, world.setup.offering.id, offer.id, world.setup.partnership_id, now=utcnow())


def test_counts_only_consenting_interested_uncapped_customers_and_suppresses_small_numbers(
    session: Session, world: World, make_customer: Callable[..., object], make_offer: Callable[..., Offer]
) -> None:
    offer = make_offer(world.setup.offering)  # a draft: nothing is live yet
    world.customer(session, make_customer, "dog-1")
    capped = world.customer(session, make_customer, "dog-2")
    world.customer(session, make_customer, "dog-3", orders=2)
    world.customer(session, make_customer, "no-consent", consents=False)
    world.customer(session, make_customer, "litter-only", category="cat_cat_litter")
    assert exact(session, world, offer) == 3
    # dog-2 has seen two partner offers this week: the host's cap of 2 per 7 days is reached.
    shown = [
        impressions.Shown(new_id("imp"), world.setup.partnership_id, world.setup.offering.id, offer.id, 1, None, 1, 1.0)
        for _ in range(2)
    ]
    impressions.record(
        session,
        host_tenant_id=world.setup.host.id,
        answer_id=new_id("exa"),
        customer_id=capped.id,  # type: ignore[attr-defined]
        placement="email",
        shown=shown,
        decisions={},
        now=utcnow(),
    )
    session.commit()
    assert exact(session, world, offer) == 2

    result = ask(session, world, offer)
    assert (result.eligible, result.suppressed, result.display) == (None, True, "fewer than 50")
    assert result.blocked is None and result.version == 1


def test_targeting_is_applied(
    session: Session, world: World, make_customer: Callable[..., object], make_offer: Callable[..., Offer]
) -> None:
    world.customer(session, make_customer, "once")
    world.customer(session, make_customer, "twice", orders=2)
    beds = ("cat_designer_dog_beds",)
    returning = make_offer(
        world.setup.offering, targeting=Targeting(categories=beds, customer_type=CustomerType.returning)
    )
    new = make_offer(world.setup.offering, targeting=Targeting(categories=beds, customer_type=CustomerType.new))
    values = {}
    for external_id in ("once", "twice"):
        customer = get_customer(session, world.setup.host.id, external_id)
        profile = interest_store.load_profile(session, world.setup.host.id, customer.id)
        assert profile is not None
        values[external_id] = interests.lifetime_value(profile, utcnow()).total_minor
    assert values["once"] < values["twice"]
    between = (values["once"] + values["twice"]) // 2
    big_spenders = make_offer(world.setup.offering, targeting=Targeting(categories=beds, min_lifetime_value=between))
    huge_spenders = make_offer(world.setup.offering, targeting=Targeting(categories=beds, min_lifetime_value=10**9))
    regional = make_offer(world.setup.offering, targeting=Targeting(categories=beds, regions=("GB",)))
    counted = [exact(session, world, o) for o in (returning, new, big_spenders, huge_spenders, regional)]
    assert counted == [1, 1, 1, 0, 2]
    assert ask(session, world, regional).not_applied == ("regions",)


def test_above_the_minimum_a_rounded_count_is_shown(
    session: Session, world: World, make_customer: Callable[..., object], make_offer: Callable[..., Offer]
) -> None:
    for number in range(forecast.MINIMUM + 3):
        world.customer(session, make_customer, f"dog-{number}")
    world.customer(session, make_customer, "no-consent", consents=False)
    offer = make_offer(world.setup.offering)
    result = ask(session, world, offer)
    assert (result.eligible, result.suppressed, result.display) == (50, False, "about 50")


def test_nobody_when_the_partnership_is_paused(
    session: Session, world: World, make_customer: Callable[..., object], make_offer: Callable[..., Offer]
) -> None:
    world.customer(session, make_customer, "dog-1")
    offer = make_offer(world.setup.offering)
    partnerships.act(session, actor(world.setup.host), world.setup.partnership_id, PartnershipAction.pause)
    session.commit()
    result = ask(session, world, offer)
    assert (result.blocked, result.suppressed) == ("partnership_inactive", True)
