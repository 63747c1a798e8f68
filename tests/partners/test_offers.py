"""Offers: drafts, publication to partnerships, approval per version by the host, edits, lifecycle."""

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from partners import live_offers, offer_actions, offers, outbox, partnerships, placements
from partners.db import unit_of_work, utcnow
from partners.errors import Conflict, Invalid, NotFound
from partners.offer_rules import Budget, OfferAction, OfferState, Targeting
from partners.offers import Offer, OfferSettings
from partners.partnership_rules import Action
from partners.retailers import Tenant
from tests.factories_offers import OfferSetup, actor, offer_content


def _publish(session: Session, setup: OfferSetup, offer: Offer) -> None:
    offer_actions.publish(session, actor(setup.offering), offer.id, [setup.partnership_id])
    session.commit()


def _serving(session: Session, setup: OfferSetup) -> list[tuple[str, int]]:
    rows = live_offers.live_for_host(session, setup.host.id, utcnow())
    return [(row.offer_id, row.serving_version) for row in rows]


def test_create_a_draft_and_edit_it_in_place(
    session: Session, make_tenant: Callable[..., Tenant], make_offer: Callable[..., Offer]
) -> None:
    shop = make_tenant()
    offer = make_offer(shop)
    assert offer.id.startswith("off_")
    assert (offer.state, offer.latest_version) == (OfferState.draft, 1)
    first = offers.latest_version(session, offer)
    assert first.id.startswith("ofv_")
    assert first.percent_off_bps == 2000
    offer_actions.edit(session, actor(shop), offer.id, {"title": "25% off"})
    session.commit()
    assert offer.latest_version == 1
    assert offers.latest_version(session, offer).title == "25% off"


def test_publish_stores_the_placement_on_both_sides_and_tells_the_host(
    session: Session, make_offer_setup: Callable[..., OfferSetup], make_offer: Callable[..., Offer]
) -> None:
    setup = make_offer_setup()
    offer = make_offer(setup.offering)
    _publish(session, setup, offer)
    assert offers.get(session, setup.offering.id, offer.id).state == OfferState.published
    mine = placements.find(session, setup.offering.id, offer.id, setup.partnership_id)
    theirs = placements.find(session, setup.host.id, offer.id, setup.partnership_id)
    assert mine is not None and theirs is not None and mine.id == theirs.id
    assert (mine.hosting, theirs.hosting) == (False, True)
    assert mine.pending_version == theirs.pending_version == 1
    events = outbox.pending(session, setup.offering.id, offer_actions.OFFER_SUBMITTED)
    assert [(e.payload["partner_id"], e.payload["version"]) for e in events] == [(setup.host.id, 1)]
    assert _serving(session, setup) == [], "nothing serves before the host approves"


def test_publishing_twice_submits_once(
    session: Session, make_offer_setup: Callable[..., OfferSetup], make_offer: Callable[..., Offer]
) -> None:
    setup = make_offer_setup()
    offer = make_offer(setup.offering)
    _publish(session, setup, offer)
    _publish(session, setup, offer)
    assert len(outbox.pending(session, setup.offering.id, offer_actions.OFFER_SUBMITTED)) == 1


def test_offers_in_categories_the_terms_do_not_allow_are_refused(
    session: Session, make_offer_setup: Callable[..., OfferSetup], make_offer: Callable[..., Offer]
) -> None:
    setup = make_offer_setup(offering_categories=["cat_dog_supplies"])
    allowed = make_offer(setup.offering)  # designer dog beds lie under dog supplies
    _publish(session, setup, allowed)
    cat_beds = make_offer(setup.offering, targeting=Targeting(categories=("cat_cat_beds",)))
    with pytest.raises(Invalid) as refused:
        offer_actions.publish(session, actor(setup.offering), cat_beds.id, [setup.partnership_id])
    assert refused.value.param == "targeting.categories"
    assert "Cat Beds" in refused.value.detail


def test_offers_in_categories_the_host_blocks_are_refused(
    session: Session, make_offer_setup: Callable[..., OfferSetup], make_offer: Callable[..., Offer]
) -> None:
    setup = make_offer_setup(host_blocked=["cat_cat_supplies"])
    offer = make_offer(setup.offering, targeting=Targeting(categories=("cat_cat_beds",)))
    with pytest.raises(Invalid, match="Pawsome Care does not accept offers in") as refused:
        offer_actions.publish(session, actor(setup.offering), offer.id, [setup.partnership_id])
    assert refused.value.param == "targeting.categories"


def test_a_currency_the_host_does_not_trade_in_is_refused(
    session: Session, make_offer_setup: Callable[..., OfferSetup], make_offer: Callable[..., Offer]
) -> None:
    setup = make_offer_setup(host_currencies=["EUR"])
    offer = make_offer(setup.offering)
    with pytest.raises(Invalid, match="trades in EUR, not GBP") as refused:
        offer_actions.publish(session, actor(setup.offering), offer.id, [setup.partnership_id])
    assert refused.value.param == "currency"


def test_publishing_needs_an_active_partnership_of_ones_own(
    session: Session,
    make_offer_setup: Callable[..., OfferSetup],
    make_offer: Callable[..., Offer],
    make_tenant: Callable[..., Tenant],
) -> None:
    proposed = make_offer_setup(active=False)
    offer = make_offer(proposed.offering)
    with pytest.raises(Conflict, match="is proposed"):
        offer_actions.publish(session, actor(proposed.offering), offer.id, [proposed.partnership_id])
    session.rollback()
    stranger_offer = make_offer(make_tenant())
    with pytest.raises(NotFound) as missing:
        offer_actions.publish(session, actor(stranger_offer.tenant_id), stranger_offer.id, [proposed.partnership_id])
    assert missing.value.param == "partnership_ids"


def test_an_offer_whose_window_ended_cannot_be_published(
    session: Session, make_offer_setup: Callable[..., OfferSetup], make_offer: Callable[..., Offer]
) -> None:
    setup = make_offer_setup()
    now = utcnow()
    offer = make_offer(setup.offering, starts_at=now - timedelta(days=10), ends_at=now - timedelta(days=1))
    with pytest.raises(Invalid) as refused:
        offer_actions.publish(session, actor(setup.offering), offer.id, [setup.partnership_id])
    assert refused.value.param == "ends_at"


def test_the_host_approves_and_the_offer_serves(
    session: Session, make_live_offer: Callable[..., tuple[OfferSetup, Offer]]
) -> None:
    setup, offer = make_live_offer()
    assert _serving(session, setup) == [(offer.id, 1)]
    host_row = placements.get_for_host(session, setup.host.id, offer.id)
    assert (host_row.pending_version, host_row.serving_version) == (None, 1)
    approved = outbox.pending(session, setup.host.id, offer_actions.OFFER_APPROVED)
    assert [e.payload["partner_id"] for e in approved] == [setup.offering.id]


def test_editing_a_live_offer_needs_approval_while_the_approved_version_keeps_serving(
    session: Session, make_live_offer: Callable[..., tuple[OfferSetup, Offer]]
) -> None:
    setup, offer = make_live_offer()
    offer_actions.edit(session, actor(setup.offering), offer.id, {"percent_off": 30.0})
    session.commit()
    assert offer.latest_version == 2
    assert offers.get_version(session, setup.offering.id, offer.id, 1).percent_off_bps == 2000, "v1 never changes"
    host_row = placements.get_for_host(session, setup.host.id, offer.id)
    assert (host_row.pending_version, host_row.serving_version) == (2, 1)
    assert _serving(session, setup) == [(offer.id, 1)]
    with pytest.raises(Conflict, match="Version 2 awaits your approval, not 1"):
        offer_actions.decide(session, actor(setup.host), offer.id, 1, approve=True)
    offer_actions.decide(session, actor(setup.host), offer.id, 2, approve=True)
    session.commit()
    assert _serving(session, setup) == [(offer.id, 2)]
    assert live_offers.live_for_host(session, setup.host.id, utcnow())[0].percent_off_bps == 3000


def test_settings_changes_need_no_new_version(
    session: Session, make_live_offer: Callable[..., tuple[OfferSetup, Offer]]
) -> None:
    setup, offer = make_live_offer()
    offer_actions.edit(session, actor(setup.offering), offer.id, {"budget": Budget(redemptions=100)})
    session.commit()
    assert offer.latest_version == 1
    assert live_offers.live_for_host(session, setup.host.id, utcnow())[0].budget_redemptions_left == 100


def test_a_rejection_keeps_the_approved_version_and_says_why(
    session: Session, make_live_offer: Callable[..., tuple[OfferSetup, Offer]]
) -> None:
    setup, offer = make_live_offer()
    offer_actions.edit(session, actor(setup.offering), offer.id, {"title": "Everything must go"})
    with pytest.raises(Invalid) as no_reason:
        offer_actions.decide(session, actor(setup.host), offer.id, 2, approve=False, reason=" ")
    assert no_reason.value.param == "reason"
    offer_actions.decide(session, actor(setup.host), offer.id, 2, approve=False, reason="Too pushy for our customers")
    session.commit()
    mine = placements.find(session, setup.offering.id, offer.id, setup.partnership_id)
    assert mine is not None
    assert (mine.serving_version, mine.rejected_version, mine.rejection_reason) == (
        1,
        2,
        "Too pushy for our customers",
    )
    assert _serving(session, setup) == [(offer.id, 1)]
    rejected = outbox.pending(session, setup.host.id, offer_actions.OFFER_REJECTED)
    assert rejected[0].payload["reason"] == "Too pushy for our customers"


def test_pause_resume_and_archive(session: Session, make_live_offer: Callable[..., tuple[OfferSetup, Offer]]) -> None:
    setup, offer = make_live_offer()
    owner = actor(setup.offering)
    offer_actions.change_state(session, owner, offer.id, OfferAction.pause)
    session.commit()
    assert _serving(session, setup) == []
    assert len(outbox.pending(session, setup.offering.id, offer_actions.OFFER_PAUSED)) == 1
    offer_actions.change_state(session, owner, offer.id, OfferAction.resume)
    session.commit()
    assert _serving(session, setup) == [(offer.id, 1)]
    offer_actions.edit(session, owner, offer.id, {"title": "New title"})
    offer_actions.change_state(session, owner, offer.id, OfferAction.archive)
    session.commit()
    assert _serving(session, setup) == []
    assert placements.get_for_host(session, setup.host.id, offer.id).pending_version is None, "v2 withdrawn"
    with pytest.raises(Conflict, match="archived"):
        offer_actions.edit(session, owner, offer.id, {"title": "Back again"})
    with pytest.raises(Conflict, match="No version of this offer awaits"):
        offer_actions.decide(session, actor(setup.host), offer.id, 2, approve=True)


def test_upsert_by_external_id_is_idempotent(session: Session, make_offer_setup: Callable[..., OfferSetup]) -> None:
    setup = make_offer_setup()
    owner, content = actor(setup.offering), offer_content()
    first, created = offer_actions.upsert(
        session, owner, "SKU-42", content, OfferSettings(), publish_to=[setup.partnership_id]
    )
    session.commit()
    again, created_again = offer_actions.upsert(
        session, owner, "SKU-42", content, OfferSettings(), publish_to=[setup.partnership_id]
    )
    session.commit()
    assert (created, created_again) == (True, False)
    assert again.id == first.id and again.latest_version == 1
    assert len(outbox.pending(session, setup.offering.id, offer_actions.OFFER_SUBMITTED)) == 1
    changed, _ = offer_actions.upsert(session, owner, "SKU-42", replace(content, title="Now 25% off"), OfferSettings())
    session.commit()
    assert changed.latest_version == 2
    assert placements.get_for_host(session, setup.host.id, first.id).pending_version == 2
    with pytest.raises(Invalid) as bad_id:
        offer_actions.upsert(session, owner, "no spaces please", content, OfferSettings())
    assert bad_id.value.param == "external_id"


def test_the_currency_is_fixed_once_published(
    session: Session, make_live_offer: Callable[..., tuple[OfferSetup, Offer]]
) -> None:
    setup, offer = make_live_offer()
    with pytest.raises(Invalid) as refused:
        offer_actions.edit(session, actor(setup.offering), offer.id, {"currency": "EUR"})
    assert refused.value.param == "currency"


def test_edits_that_no_longer_fit_a_partnership_are_refused(
    session: Session, make_live_offer: Callable[..., tuple[OfferSetup, Offer]]
) -> None:
    setup, offer = make_live_offer()
    wine = Targeting(categories=("cat_wine",))
    with pytest.raises(Invalid) as refused:
        offer_actions.edit(session, actor(setup.offering), offer.id, {"targeting": wine})
    assert refused.value.param == "targeting.categories"


def test_budget_use_stops_the_offer_when_spent(
    session: Session, make_live_offer: Callable[..., tuple[OfferSetup, Offer]]
) -> None:
    setup, offer = make_live_offer(settings=OfferSettings(budget=Budget(redemptions=2)))
    offer_actions.use_budget(session, setup.offering.id, offer.id, value=1500)
    session.commit()
    assert live_offers.live_for_host(session, setup.host.id, utcnow())[0].budget_redemptions_left == 1
    offer_actions.use_budget(session, setup.offering.id, offer.id, value=900)
    session.commit()
    assert _serving(session, setup) == []
    row = session.get(live_offers.LiveOffer, (setup.host.id, setup.partnership_id, offer.id))
    assert row is not None and row.status == "budget_spent"
    assert offers.get(session, setup.offering.id, offer.id).used_value == 2400


def test_another_tenant_cannot_see_or_act_on_an_offer(
    session: Session,
    make_live_offer: Callable[..., tuple[OfferSetup, Offer]],
    make_tenant: Callable[..., Tenant],
) -> None:
    setup, offer = make_live_offer()
    stranger = make_tenant()
    with pytest.raises(NotFound):
        offers.get(session, stranger.id, offer.id)
    with pytest.raises(NotFound):
        offer_actions.edit(session, actor(stranger), offer.id, {"title": "mine now"})
    with pytest.raises(NotFound):
        offer_actions.decide(session, actor(stranger), offer.id, 1, approve=True)
    with pytest.raises(NotFound):
        offer_actions.change_state(session, actor(setup.host), offer.id, OfferAction.pause)
    assert placements.list_for_host(session, stranger.id, awaiting=None, after=None, limit=10) == ([], False)


def test_the_offering_side_cannot_approve_its_own_offer(
    session: Session, make_offer_setup: Callable[..., OfferSetup], make_offer: Callable[..., Offer]
) -> None:
    setup = make_offer_setup()
    offer = make_offer(setup.offering)
    _publish(session, setup, offer)
    with pytest.raises(NotFound):
        offer_actions.decide(session, actor(setup.offering), offer.id, 1, approve=True)


def test_an_ended_partnership_can_no_longer_approve(
    session: Session, make_offer_setup: Callable[..., OfferSetup], make_offer: Callable[..., Offer]
) -> None:
    setup = make_offer_setup()
    offer = make_offer(setup.offering)
    _publish(session, setup, offer)
    partnerships.act(session, actor(setup.host), setup.partnership_id, Action.end)
    with pytest.raises(Conflict, match="ended"):
        offer_actions.decide(session, actor(setup.host), offer.id, 1, approve=True)


def test_concurrent_approve_and_reject_have_exactly_one_winner(
    engine: Engine, session: Session, make_offer_setup: Callable[..., OfferSetup], make_offer: Callable[..., Offer]
) -> None:
    setup = make_offer_setup()
    offer = make_offer(setup.offering)
    _publish(session, setup, offer)
    barrier = threading.Barrier(2)
    outcomes: dict[bool, str] = {}

    def attempt(approve: bool) -> None:
        barrier.wait()
        try:
            with unit_of_work(engine) as s:
                offer_actions.decide(s, actor(setup.host), offer.id, 1, approve=approve, reason="no")
            outcomes[approve] = "won"
        except Conflict:
            outcomes[approve] = "refused"

    threads = [threading.Thread(target=attempt, args=(a,)) for a in (True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["refused", "won"]
    session.expire_all()
    row = placements.get_for_host(session, setup.host.id, offer.id)
    assert row.serving_version == (1 if outcomes[True] == "won" else None)
    assert row.rejected_version == (None if outcomes[True] == "won" else 1)
