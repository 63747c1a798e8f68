"""Live offers by host: kept current when data changes, read with one query, the clock applied on read."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, event
from sqlmodel import Session

from partners import live_offers, offer_actions, partnerships, profiles
from partners.db import utcnow
from partners.offer_rules import CodeMode, Targeting
from partners.offers import Offer, OfferSettings
from partners.partnership_rules import Action
from partners.terms import agreement_digest
from tests.factories_offers import OfferSetup, actor
from tests.factories_partners import CARE_CATEGORIES, profile_input, terms_input

Made = Callable[..., tuple[OfferSetup, Offer]]


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _status(session: Session, setup: OfferSetup, offer: Offer) -> str | None:
    session.expire_all()
    row = session.get(live_offers.LiveOffer, (setup.host.id, setup.partnership_id, offer.id))
    return row.status if row is not None else None


def test_one_query_reads_what_the_host_may_show(engine: Engine, session: Session, make_live_offer: Made) -> None:
    setup, offer = make_live_offer(
        settings=OfferSettings(code_mode=CodeMode.shared, shared_code="BEDS20"),
        targeting=Targeting(categories=("cat_designer_dog_beds",), price_min=5000, regions=("GB",)),
    )
    with _statements(engine) as seen:
        rows = live_offers.live_for_host(session, setup.host.id, utcnow())
    assert len(seen) == 1
    assert "live_offers" in seen[0] and "partnerships" in seen[0]
    [row] = rows
    assert (row.offer_id, row.offering_tenant_id, row.partnership_id) == (
        offer.id,
        setup.offering.id,
        setup.partnership_id,
    )
    assert (row.serving_version, row.kind, row.percent_off_bps, row.currency) == (1, "percent_off", 2000, "GBP")
    assert (row.categories, row.price_min, row.regions) == (["cat_designer_dog_beds"], 5000, ["GB"])
    assert (row.code_mode, row.shared_code) == ("shared", "BEDS20")
    assert row.version_id.startswith("ofv_")


def test_only_the_host_sees_it(session: Session, make_live_offer: Made) -> None:
    setup, offer = make_live_offer()
    other, other_offer = make_live_offer()
    assert [r.offer_id for r in live_offers.live_for_host(session, setup.host.id, utcnow())] == [offer.id]
    assert [r.offer_id for r in live_offers.live_for_host(session, other.host.id, utcnow())] == [other_offer.id]
    assert live_offers.live_for_host(session, setup.offering.id, utcnow()) == [], "not the offering side"


def test_the_window_is_applied_when_reading(session: Session, make_live_offer: Made) -> None:
    now = utcnow()
    setup, _ = make_live_offer(starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=10))
    assert live_offers.live_for_host(session, setup.host.id, now) == []
    assert len(live_offers.live_for_host(session, setup.host.id, now + timedelta(days=2))) == 1
    assert live_offers.live_for_host(session, setup.host.id, now + timedelta(days=10)) == [], "expired"


def test_a_paused_partnership_stops_serving_at_once(session: Session, make_live_offer: Made) -> None:
    setup, _ = make_live_offer()
    partnerships.act(session, actor(setup.host), setup.partnership_id, Action.pause)
    session.commit()
    assert live_offers.live_for_host(session, setup.host.id, utcnow()) == []
    partnerships.act(session, actor(setup.host), setup.partnership_id, Action.resume)
    session.commit()
    assert len(live_offers.live_for_host(session, setup.host.id, utcnow())) == 1


def test_new_terms_that_no_longer_allow_the_category_take_effect_on_refresh(
    session: Session, make_live_offer: Made
) -> None:
    setup, offer = make_live_offer()
    narrower = terms_input(my_offer_categories=["cat_cat_supplies"])
    partnerships.act(session, actor(setup.offering), setup.partnership_id, Action.propose_terms, new_terms=narrower)
    accepting = (2, agreement_digest(narrower.agreement_text))
    partnerships.act(session, actor(setup.host), setup.partnership_id, Action.accept, accepting=accepting)
    live_offers.refresh_partnership(session, setup.host.id, setup.partnership_id)
    session.commit()
    assert _status(session, setup, offer) == "not_allowed"
    assert live_offers.live_for_host(session, setup.host.id, utcnow()) == []


def test_a_host_blocking_the_category_takes_effect_on_refresh(session: Session, make_live_offer: Made) -> None:
    setup, offer = make_live_offer()
    blocked = profile_input(
        display_name="Pawsome Care", categories=CARE_CATEGORIES, blocked_categories=["cat_dog_beds"]
    )
    profiles.save_profile(session, setup.host.id, blocked)
    live_offers.refresh_host(session, setup.host.id)
    session.commit()
    assert _status(session, setup, offer) == "not_allowed"


def test_a_pool_without_codes_does_not_serve_until_codes_arrive(session: Session, make_live_offer: Made) -> None:
    setup, offer = make_live_offer(settings=OfferSettings(code_mode=CodeMode.pool))
    assert _status(session, setup, offer) == "no_codes"
    offer_actions.upload_codes(session, actor(setup.offering), offer.id, ["BEDS-1"])
    session.commit()
    assert _status(session, setup, offer) == "live"
    [row] = live_offers.live_for_host(session, setup.host.id, utcnow())
    assert (row.code_mode, row.shared_code) == ("pool", None)


def test_no_row_before_approval_and_statuses_after(
    session: Session, make_offer_setup: Callable[..., OfferSetup], make_offer: Callable[..., Offer]
) -> None:
    setup = make_offer_setup()
    offer = make_offer(setup.offering)
    offer_actions.publish(session, actor(setup.offering), offer.id, [setup.partnership_id])
    live_offers.refresh(session, setup.host.id, offer.id)
    session.commit()
    assert _status(session, setup, offer) is None
    offer_actions.decide(session, actor(setup.host), offer.id, 1, approve=True)
    session.commit()
    assert _status(session, setup, offer) == "live"
    partnerships.act(session, actor(setup.host), setup.partnership_id, Action.end)
    live_offers.refresh_partnership(session, setup.host.id, setup.partnership_id)
    session.commit()
    assert _status(session, setup, offer) == "partnership_inactive"
