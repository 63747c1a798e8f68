"""Change feeds: numbered at commit, in commit order, so a reader paging by cursor never skips a change."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from partners import change_feeds, changes, consent, offer_actions, offers, privacy, redemptions
from partners.changes import Change, ChangeCounter, Feed
from partners.consent_rules import Method, Purpose, Source
from partners.customers import Customer
from partners.db import unit_of_work, utcnow
from partners.offer_rules import OfferAction
from partners.offers import Offer
from partners.partnership_rules import Action
from partners.partnerships import act
from partners.retailers import Tenant
from tests.factories_offers import OfferSetup, actor
from tests.factories_redemptions import ShownOffer

needs_postgres = pytest.mark.skipif(
    not os.environ.get("PARTNERLOOP_TEST_DATABASE_URL"),
    reason="two concurrent writers need PostgreSQL (SQLite serializes writers, which gives the order)",
)


def _feed(session: Session, tenant_id: str, feed: Feed, after: int = 0) -> list[changes.Entry]:
    session.expire_all()
    entries, _ = changes.read(session, tenant_id, feed, after, 1000)
    return entries


def _retitle(engine: Engine, tenant_id: str, offer_id: str, title: str) -> None:
    with unit_of_work(engine) as session:
        offer_actions.edit(session, actor(tenant_id), offer_id, {"title": title})


def test_changes_are_numbered_in_commit_order_and_each_item_appears_once_at_its_latest_change(
    engine: Engine, session: Session, make_tenant: Callable[..., Tenant], make_offer: Callable[..., Offer]
) -> None:
    shop = make_tenant()
    first, second = make_offer(shop), make_offer(shop)
    assert [(e.seq, e.key) for e in _feed(session, shop.id, Feed.offers)] == [(1, first.id), (2, second.id)]
    _retitle(engine, shop.id, first.id, "Changed")
    assert [(e.seq, e.key) for e in _feed(session, shop.id, Feed.offers)] == [(2, second.id), (3, first.id)]
    assert [e.key for e in _feed(session, shop.id, Feed.offers, after=2)] == [first.id]


def test_a_rolled_back_transaction_takes_no_number(
    engine: Engine, session: Session, make_tenant: Callable[..., Tenant], make_offer: Callable[..., Offer]
) -> None:
    shop = make_tenant()
    offer = make_offer(shop)

    def edit_then_fail() -> None:
        with unit_of_work(engine) as writer:
            offer_actions.edit(writer, actor(shop), offer.id, {"title": "Never"})
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        edit_then_fail()
    _retitle(engine, shop.id, offer.id, "Kept")
    assert [e.seq for e in _feed(session, shop.id, Feed.offers)] == [2]  # no gap, no phantom change
    counter = session.get(ChangeCounter, shop.id)
    assert counter is not None and counter.last_seq == 2


def test_a_savepoint_rolled_back_keeps_the_outer_transactions_changes(
    engine: Engine, session: Session, make_tenant: Callable[..., Tenant], make_offer: Callable[..., Offer]
) -> None:
    shop = make_tenant()
    offer = make_offer(shop)
    with unit_of_work(engine) as writer:
        offer_actions.edit(writer, actor(shop), offer.id, {"title": "Outer"})
        with pytest.raises(RuntimeError), writer.begin_nested():
            raise RuntimeError("inner step failed")
    assert [e.key for e in _feed(session, shop.id, Feed.offers, after=1)] == [offer.id]


@needs_postgres
def test_a_change_that_commits_after_a_later_one_is_not_skipped_by_a_paging_reader(
    engine: Engine, session: Session, make_tenant: Callable[..., Tenant], make_offer: Callable[..., Offer]
) -> None:
    shop = make_tenant()
    early_offer, late_offer = make_offer(shop), make_offer(shop)
    cursor = _feed(session, shop.id, Feed.offers)[-1].seq
    early = Session(engine, expire_on_commit=False)  # connection 1: writes first, commits last
    late = Session(engine, expire_on_commit=False)  # connection 2: writes second, commits first
    try:
        offer_actions.edit(early, actor(shop), early_offer.id, {"title": "Early writer"})
        early.flush()
        offer_actions.edit(late, actor(shop), late_offer.id, {"title": "Late writer"})
        late.commit()
        # The reader pages while `early` is still open: it sees the late change only.
        with Session(engine) as reader:
            page, _more, cursor = change_feeds.offers_changed(reader, shop.id, cursor, 100)
        assert [c.offer_id for c in page] == [late_offer.id]
        early.commit()
    finally:
        early.close()
        late.close()
    with Session(engine) as reader:
        page, _more, _last = change_feeds.offers_changed(reader, shop.id, cursor, 100)
    assert [c.offer_id for c in page] == [early_offer.id]
    assert page[0].offer is not None and page[0].latest is not None and page[0].latest.title == "Early writer"


@needs_postgres
def test_concurrent_writers_and_a_paging_reader_end_with_every_change_seen(
    engine: Engine, session: Session, make_tenant: Callable[..., Tenant], make_offer: Callable[..., Offer]
) -> None:
    shop = make_tenant()
    ids = [make_offer(shop).id for _ in range(6)]
    writers_done = threading.Event()
    seen: dict[str, str] = {}
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        rng = random.Random(worker)
        try:
            for n in range(8):
                with unit_of_work(engine) as writer:
                    offer_id = rng.choice(ids)
                    offer_actions.edit(writer, actor(shop), offer_id, {"title": f"w{worker}-{n}"})
                    writer.flush()
                    time.sleep(rng.uniform(0, 0.02))  # hold the transaction open: commits interleave
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        cursor, last_seq = 0, 0
        while True:
            done = writers_done.is_set()
            with Session(engine) as reader:
                page, more, cursor = change_feeds.offers_changed(reader, shop.id, cursor, 5)
            for change in page:
                assert change.seq > last_seq  # strictly ordered
                last_seq = change.seq
                assert change.latest is not None
                seen[change.offer_id] = change.latest.title
            if done and not more:
                return

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    reader_thread = threading.Thread(target=read)
    reader_thread.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writers_done.set()
    reader_thread.join(timeout=60)
    assert not errors
    session.expire_all()
    final = {offer.id: offers.latest_version(session, offer).title for offer in _offers(session, shop)}
    assert seen == final  # the reader's last view of every offer is the offer as committed


def _offers(session: Session, shop: Tenant) -> list[Offer]:
    return list(session.exec(select(Offer).where(col(Offer.tenant_id) == shop.id)).all())


def test_the_hosts_feed_follows_approval_pause_and_the_partnerships_state(
    engine: Engine,
    session: Session,
    make_live_offer: Callable[..., tuple[OfferSetup, Offer]],
) -> None:
    setup, offer = make_live_offer()
    host = setup.host.id
    with Session(engine) as reader:
        [approved], _, cursor = change_feeds.partner_offers_changed(reader, host, 0, 100)
    assert (approved.offer_id, approved.partnership_id, approved.showable) == (offer.id, setup.partnership_id, True)
    assert approved.row is not None and approved.row.title == "20% off designer dog beds"
    with unit_of_work(engine) as writer:
        offer_actions.change_state(writer, actor(setup.offering), offer.id, OfferAction.pause)
    with Session(engine) as reader:
        [paused], _, cursor = change_feeds.partner_offers_changed(reader, host, cursor, 100)
    assert (paused.showable, paused.status) == (False, "paused")
    with unit_of_work(engine) as writer:
        offer_actions.change_state(writer, actor(setup.offering), offer.id, OfferAction.resume)
        act(writer, actor(setup.host), setup.partnership_id, Action.pause)
    with Session(engine) as reader:
        [resumed], _, _ = change_feeds.partner_offers_changed(reader, host, cursor, 100)
    assert (resumed.showable, resumed.status) == (False, "partnership_paused")
    # The offering tenant's own feed saw every one of its offer's changes, placements included.
    assert [e.key for e in _feed(session, setup.offering.id, Feed.offers)] == [offer.id]


def test_redemptions_reach_both_sides_feeds_and_move_when_reversed(
    engine: Engine, session: Session, shown_offer: Callable[..., ShownOffer]
) -> None:
    shown = shown_offer()
    with unit_of_work(engine) as writer:
        data = redemptions.RedemptionInput("order-1", 5_000, "GBP", code=shown.code)
        recorded = redemptions.record(writer, shown.offering.id, data, now=utcnow())
    red_id = recorded.redemption.id
    for tenant in (shown.offering, shown.host):
        with Session(engine) as reader:
            [item], _, _ = change_feeds.redemptions_changed(reader, tenant.id, 0, 100)
        assert item.redemption_id == red_id and item.redemption is not None
    before = _feed(session, shown.host.id, Feed.redemptions)[0].seq
    with unit_of_work(engine) as writer:
        redemptions.reverse(writer, shown.offering.id, red_id, "refund", now=utcnow())
    with Session(engine) as reader:
        [item], _, _ = change_feeds.redemptions_changed(reader, shown.host.id, before, 100)
    assert item.redemption is not None and item.redemption.reversed_at is not None


def test_consent_events_appear_and_become_tombstones_when_the_customer_is_erased(
    engine: Engine, session: Session, make_customer: Callable[..., Customer]
) -> None:
    customer = make_customer(external_id="c-1")
    with unit_of_work(engine) as writer:
        consent.withdraw(
            writer,
            customer.tenant_id,
            "c-1",
            method=Method.customer_service,
            source=Source.customer_service,
            purposes=(Purpose.partner_offers, Purpose.overlap_analysis),
        )
    with Session(engine) as reader:
        items, _, cursor = change_feeds.consent_events_changed(reader, customer.tenant_id, 0, 100)
    assert len(items) == 2 and {i.customer_external_id for i in items} == {"c-1"}
    with unit_of_work(engine) as writer:
        privacy.erase_customer(writer, customer.tenant_id, "c-1", hash_key=b"k" * 32)
    with Session(engine) as reader:
        erased, _, _ = change_feeds.consent_events_changed(reader, customer.tenant_id, cursor, 100)
    assert sorted(e.id for e in erased) == sorted(i.id for i in items)
    assert all(e.event is None and e.customer_external_id is None for e in erased)


def test_feeds_are_per_tenant(
    session: Session, make_tenant: Callable[..., Tenant], make_offer: Callable[..., Offer]
) -> None:
    one, other = make_tenant(), make_tenant()
    make_offer(one)
    assert _feed(session, other.id, Feed.offers) == []
    assert session.exec(select(Change).where(col(Change.tenant_id) == other.id)).all() == []
