"""Ranking is fed the offer's observed conversion and the partnership's reciprocity from the counters."""

from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from partners import counters, exchange, live_offers, ranking, redemptions
from partners.consent_rules import Action
from partners.db import utcnow
from partners.offers import Offer
from partners.retailers import Tenant
from tests.factories_exchange import buy, consent_to
from tests.factories_offers import OfferSetup, partner_up
from tests.factories_partners import CARE_CATEGORIES

KEY = b"k" * 32


@dataclass
class TwoPartners:
    host: Tenant
    setups: list[OfferSetup]
    offers: list[Offer]


def _two_partners(
    session: Session,
    make_profile: Callable[..., Tenant],
    make_live_offer: Callable[..., tuple[OfferSetup, Offer]],
    make_customer: Callable[..., object],
    make_notice: Callable[..., object],
) -> TwoPartners:
    """Two bed shops with the same offer at one care shop, whose dog owner consents to all partners."""
    host = make_profile(display_name="Pawsome Care", categories=CARE_CATEGORIES, currencies=["GBP"])
    setups, offers = [], []
    for name in ("Snoozy Beds", "Dreamy Beds"):
        offering = make_profile(display_name=name)
        partnership_id = partner_up(session, offering, host, cap_per_7_days=50, cap_per_30_days=200)
        setup, offer = make_live_offer(OfferSetup(offering, host, partnership_id))
        setups.append(setup)
        offers.append(offer)
    make_customer(tenant=host, external_id="dog-owner-1")
    buy(session, host.id, "dog-owner-1", "cat_dog_beds", 9000)
    notice = make_notice(host)
    consent_to(session, host.id, "dog-owner-1", "all", Action.granted, notice.id)  # type: ignore[attr-defined]
    session.commit()
    return TwoPartners(host, setups, offers)


def _ask(session: Session, host: Tenant, dry_run: bool = False) -> exchange.ExchangeResult:
    request = exchange.ExchangeRequest("dog-owner-1", exchange.Placement.order_confirmation, dry_run=dry_run)
    result = exchange.answer(session, host.id, request, now=utcnow(), code_key=KEY)
    session.commit()
    return result


def test_a_converting_offer_outranks_an_otherwise_equal_one(
    session: Session,
    make_profile: Callable[..., Tenant],
    make_live_offer: Callable[..., tuple[OfferSetup, Offer]],
    make_customer: Callable[..., object],
    make_notice: Callable[..., object],
) -> None:
    world = _two_partners(session, make_profile, make_live_offer, make_customer, make_notice)
    first = _ask(session, world.host)
    assert len(first.offers) == 2
    assert first.offers[0].score == first.offers[1].score, "equal offers, equal scores"
    # The offer that lost the tie converts.
    loser = first.offers[1]
    assert loser.impression_id is not None
    redemptions.record(
        session,
        loser.offer.offering_tenant_id,
        redemptions.RedemptionInput("order-1", 9_000, "GBP", impression_id=loser.impression_id),
        now=utcnow(),
    )
    session.commit()
    assert counters.offer_counts(session, loser.offer.offering_tenant_id, loser.offer.offer_id) == (1, 1)
    again = _ask(session, world.host, dry_run=True)
    assert [s.offer.offer_id for s in again.offers] == [loser.offer.offer_id, first.offers[0].offer.offer_id]
    converting, other = again.offers
    expected = (1 + 5 * ranking.conversion(_candidate(converting.offer))) / (
        1 + 5 * ranking.conversion(_candidate(other.offer))
    )
    assert round(converting.score / other.score, 3) == round(expected, 3)


def _candidate(row: live_offers.LiveOfferRow) -> ranking.Candidate:
    return ranking.Candidate(
        row.offer_id,
        row.offering_tenant_id,
        tuple(row.categories),
        None,
        None,
        impressions=row.offer_impressions,
        redemptions=row.offer_redemptions,
        given=row.given,
        received=row.received,
    )


def test_reciprocity_favours_the_partner_the_host_owes_and_damps_the_one_it_is_ahead_of(
    session: Session,
    make_profile: Callable[..., Tenant],
    make_live_offer: Callable[..., tuple[OfferSetup, Offer]],
    make_customer: Callable[..., object],
    make_notice: Callable[..., object],
    make_offer: Callable[..., Offer],
) -> None:
    world = _two_partners(session, make_profile, make_live_offer, make_customer, make_notice)
    tie = _ask(session, world.host, dry_run=True)
    ahead_of, owed = tie.offers[0].offer, tie.offers[1].offer  # the tie's loser becomes the one owed
    # The partner that lost the tie showed one of the host's offers once (as its own exchange answers count it).
    hosts_offer = make_offer(world.host).id
    counters.count_impressions(
        session, owed.offering_tenant_id, [(owed.partnership_id, world.host.id, hosts_offer)], utcnow()
    )
    for _ in range(3):  # and the host has shown the other partner's offers again and again
        counters.count_impressions(
            session,
            world.host.id,
            [(ahead_of.partnership_id, ahead_of.offering_tenant_id, ahead_of.offer_id)],
            utcnow(),
        )
    session.commit()
    rows = {r.offer_id: r for r in live_offers.live_for_host(session, world.host.id, utcnow())}
    assert (rows[owed.offer_id].given, rows[owed.offer_id].received) == (0, 1)
    assert (rows[ahead_of.offer_id].given, rows[ahead_of.offer_id].received) == (3, 0)
    assert (
        ranking.reciprocity(_candidate(rows[owed.offer_id]))
        > 1
        > ranking.reciprocity(_candidate(rows[ahead_of.offer_id]))
    )

    tilted = _ask(session, world.host, dry_run=True)
    assert [s.offer.offer_id for s in tilted.offers] == [owed.offer_id, ahead_of.offer_id]
    high, low = tilted.offers
    expected = (
        ranking.reciprocity(_candidate(rows[owed.offer_id]))
        * (1 + 5 * ranking.conversion(_candidate(rows[owed.offer_id])))
        / ranking.reciprocity(_candidate(rows[ahead_of.offer_id]))
        / (1 + 5 * ranking.conversion(_candidate(rows[ahead_of.offer_id])))
    )
    assert round(high.score / low.score, 3) == round(expected, 3)


def test_counters_match_a_full_recount(
    session: Session,
    make_profile: Callable[..., Tenant],
    make_live_offer: Callable[..., tuple[OfferSetup, Offer]],
    make_customer: Callable[..., object],
    make_notice: Callable[..., object],
) -> None:
    world = _two_partners(session, make_profile, make_live_offer, make_customer, make_notice)
    for _ in range(3):
        _ask(session, world.host)
    for setup, offer in zip(world.setups, world.offers, strict=True):
        assert counters.offer_counts(session, setup.offering.id, offer.id) == (3, 0)
        month = counters.month_of(utcnow())
        assert counters.given_by_month(session, world.host.id, setup.partnership_id) == {month: 3}
        assert counters.given_by_month(session, setup.offering.id, setup.partnership_id) == {}
