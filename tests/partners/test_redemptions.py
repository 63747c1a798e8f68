"""Redemptions: attribution to the impression, single-use codes, idempotency, the ledger, reports."""

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlmodel import Session

from partners import counters, ledger, outbox, purchases, redemptions, reports
from partners.consent_rules import Action
from partners.db import utcnow
from partners.errors import DomainError, Invalid, NotFound
from partners.impressions import ReceivedImpression
from partners.ledger import LedgerEntry
from partners.offers import Offer, OfferVersion
from partners.redemptions import Redemption, RedemptionInput
from partners.retailers import Tenant
from tests.factories_exchange import Story, buy, consent_to
from tests.factories_redemptions import ShownOffer


def redeem(session: Session, shown: ShownOffer, order_id: str = "order-1", **overrides: object) -> redemptions.Recorded:
    values: dict[str, object] = {"order_id": order_id, "order_value": 12_000, "currency": "GBP", "code": shown.code}
    values.update(overrides)
    recorded = redemptions.record(session, shown.offering.id, RedemptionInput(**values), now=utcnow())  # type: ignore[arg-type]
    session.commit()
    return recorded


def written(session: Session) -> tuple[int, int]:
    count = session.execute(select(func.count()).select_from(Redemption)).scalar_one()
    entries = session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
    return int(count), int(entries)


def refused(session: Session, shown: ShownOffer, problem: str, **overrides: Any) -> DomainError:
    with pytest.raises(DomainError) as caught:
        redeem(session, shown, **overrides)
    session.rollback()
    assert caught.value.code == problem, caught.value.detail
    return caught.value


def test_the_whole_story(session: Session, shown_offer: Callable[..., ShownOffer]) -> None:
    shown = shown_offer()
    recorded = redeem(session, shown)
    red = recorded.redemption
    assert recorded.created
    assert red.impression_id == shown.impression_id, "attributed to the impression that showed the code"
    assert red.host_tenant_id == shown.host.id and red.partnership_id == shown.partnership_id
    assert (red.commission_bps, red.commission) == (1000, 1200), "10% of the order value"

    refused(session, shown, "code_already_redeemed", order_id="order-2")
    assert written(session) == (1, 2), "the refused second redemption wrote nothing"

    offer = session.get(Offer, (shown.offering.id, red.offer_id))
    assert offer is not None and offer.used_redemptions == 1
    assert counters.offer_counts(session, shown.offering.id, red.offer_id) == (1, 1)
    events = outbox.pending(session, shown.offering.id, redemptions.REDEMPTION_RECORDED)
    assert sorted(e.recipient for e in events) == sorted([shown.host.id, shown.offering.id]), "both partners told"
    assert {e.payload["redemption_id"] for e in events} == {red.id}

    [host_month] = ledger.monthly(session, shown.host.id, shown.partnership_id)
    assert host_month.owed_to_me["GBP"].net == 1200 and not host_month.owed_by_me
    assert (host_month.impressions_given, host_month.impressions_received) == (1, 0)
    assert host_month.reciprocity_balance == 1
    [offering_month] = ledger.monthly(session, shown.offering.id, shown.partnership_id)
    assert offering_month.owed_by_me["GBP"].net == 1200 and not offering_month.owed_to_me
    assert (offering_month.impressions_given, offering_month.impressions_received) == (0, 1)
    assert offering_month.reciprocity_balance == -1
    for side in (shown.host.id, shown.offering.id):
        rows, more = ledger.entries(session, side, shown.partnership_id)
        assert [e.redemption_id for e in rows] == [red.id] and not more

    start, end = utcnow() - timedelta(days=1), utcnow() + timedelta(days=1)
    host_report = reports.for_partnership(session, shown.host.id, shown.partnership_id, start, end)
    offering_report = reports.for_partnership(session, shown.offering.id, shown.partnership_id, start, end)
    for direction in (host_report.as_host, offering_report.as_offering):
        stats = direction.total
        assert (stats.impressions, stats.unique_customers, stats.redemptions) == (1, 1, 1)
        assert stats.conversion_rate == 1.0
        assert stats.revenue == {"GBP": 12_000} and stats.commission == {"GBP": 1200}
        assert list(direction.by_offer) == [red.offer_id] and direction.by_offer[red.offer_id].redemptions == 1
    assert host_report.as_offering.total.impressions == 0 and offering_report.as_host.total.impressions == 0
    by_offer = reports.for_offer(session, shown.offering.id, red.offer_id, start, end).stats
    assert (by_offer.impressions, by_offer.unique_customers, by_offer.redemptions) == (1, 1, 1)
    with pytest.raises(NotFound):
        reports.for_offer(session, shown.host.id, red.offer_id, start, end)

    reversed_ = redemptions.reverse(session, shown.offering.id, red.id, "refund", now=utcnow())
    session.commit()
    assert reversed_.reversed_at is not None
    redemptions.reverse(session, shown.offering.id, red.id, "refund", now=utcnow())
    session.commit()
    assert written(session) == (1, 4), "reversing twice nets once"
    for side, direction_name in ((shown.host.id, "owed_to_me"), (shown.offering.id, "owed_by_me")):
        [month] = ledger.monthly(session, side, shown.partnership_id)
        money = getattr(month, direction_name)["GBP"]
        assert (money.commissions, money.reversals, money.net) == (1200, -1200, 0)
        rows, _ = ledger.entries(session, side, shown.partnership_id)
        assert [(e.kind, e.amount, e.redemption_id) for e in rows] == [
            ("commission", 1200, red.id),
            ("reversal", -1200, red.id),
        ]
    after = reports.for_partnership(session, shown.host.id, shown.partnership_id, start, end).as_host.total
    assert (after.redemptions, after.reversed, after.revenue) == (0, 1, {})
    assert counters.offer_counts(session, shown.offering.id, red.offer_id) == (1, 0), "the conversion is net"
    reversed_events = outbox.pending(session, shown.offering.id, redemptions.REDEMPTION_REVERSED)
    assert sorted(e.recipient for e in reversed_events) == sorted([shown.host.id, shown.offering.id])
    assert reversed_events[0].payload["reason"] == "refund"


def test_the_same_order_again_is_the_same_redemption(session: Session, shown_offer: Callable[..., ShownOffer]) -> None:
    shown = shown_offer()
    first = redeem(session, shown)
    again = redeem(session, shown)
    assert not again.created and again.redemption.id == first.redemption.id
    refused(session, shown, "order_already_reported", order_value=5_000)
    assert written(session) == (1, 2)


def test_by_impression_id_without_a_code(session: Session, shown_offer: Callable[..., ShownOffer]) -> None:
    shown = shown_offer(pool=0)  # no code mode: the impression is quoted instead
    red = redeem(session, shown, code=None, impression_id=shown.impression_id).redemption
    assert red.impression_id == shown.impression_id


def test_bad_input_is_refused_with_its_own_code_and_writes_nothing(
    session: Session, shown_offer: Callable[..., ShownOffer], make_tenant: Callable[..., Tenant]
) -> None:
    shown = shown_offer()
    assert refused(session, shown, "unknown_code", code="NOSUCHCODE").param == "code"
    refused(session, shown, "unknown_impression", code=None, impression_id="imp_unknown")
    assert refused(session, shown, "currency_mismatch", currency="EUR").param == "currency"
    with pytest.raises(Invalid):
        redeem(session, shown, code=None)
    session.rollback()
    with pytest.raises(Invalid):
        redeem(session, shown, redeemed_at=utcnow() + timedelta(hours=1))
    session.rollback()
    # Another tenant (the host itself, or a stranger) reporting the code: unknown to them.
    for tenant_id in (shown.host.id, make_tenant().id):
        with pytest.raises(NotFound):
            redemptions.record(
                session,
                tenant_id,
                RedemptionInput("order-x", 12_000, "GBP", code=shown.code),
                now=utcnow(),
            )
        session.rollback()
    assert written(session) == (0, 0)


def test_an_expired_code_is_refused(session: Session, shown_offer: Callable[..., ShownOffer]) -> None:
    shown = shown_offer()
    versions, shown_rows = OfferVersion.__table__, ReceivedImpression.__table__  # type: ignore[attr-defined]
    session.execute(update(shown_rows).values(created_at=utcnow() - timedelta(minutes=10)))
    session.execute(update(versions).values(ends_at=utcnow() - timedelta(minutes=1)))  # the offer ended a minute ago
    session.commit()
    refused(session, shown, "code_expired")
    red = redeem(session, shown, redeemed_at=utcnow() - timedelta(minutes=2)).redemption
    assert red.code == shown.code, "an order placed while the offer ran still counts"


def test_outside_the_attribution_window(session: Session, shown_offer: Callable[..., ShownOffer]) -> None:
    shown = shown_offer()
    table = ReceivedImpression.__table__  # type: ignore[attr-defined]
    session.execute(update(table).values(created_at=utcnow() - timedelta(days=31)))  # the window is 30 days
    session.commit()
    refused(session, shown, "outside_attribution_window")
    assert written(session) == (0, 0)
    # Before the impression is outside the window too.
    refused(session, shown, "outside_attribution_window", redeemed_at=utcnow() - timedelta(days=40))


def second_dog_owner(session: Session, story: Story, make_customer: Callable[..., object]) -> str:
    """Another consenting dog owner of the host."""
    make_customer(tenant=story.setup.host, external_id="dog-owner-2")
    buy(session, story.setup.host.id, "dog-owner-2", "cat_dog_beds", 9000)
    consent_to(session, story.setup.host.id, "dog-owner-2", story.setup.offering.id, Action.granted, story.notice_id)
    session.commit()
    return "dog-owner-2"


def test_a_shared_code_is_attributed_to_its_latest_impression_and_may_be_used_again(
    session: Session,
    exchange_story: Callable[..., Story],
    show_offer: Callable[..., ShownOffer],
    make_customer: Callable[..., object],
) -> None:
    story = exchange_story(shared_code="BEDS20")
    first = show_offer(story)
    second = show_offer(story, second_dog_owner(session, story, make_customer))
    assert first.code == second.code == "BEDS20"
    one = redeem(session, first, order_id="s-1", code="beds20").redemption
    two = redeem(session, first, order_id="s-2").redemption
    assert one.impression_id == two.impression_id == second.impression_id, "the latest impression of the code"
    assert counters.offer_counts(session, story.setup.offering.id, story.offer.id) == (2, 2)


def test_new_customers_won_and_their_spend_since(
    session: Session,
    exchange_story: Callable[..., Story],
    show_offer: Callable[..., ShownOffer],
    make_customer: Callable[..., object],
) -> None:
    story = exchange_story(pool=2)
    first = show_offer(story)
    second = show_offer(story, second_dog_owner(session, story, make_customer))
    bed_shop = story.setup.offering
    make_customer(tenant=bed_shop, external_id="new-buyer")
    make_customer(tenant=bed_shop, external_id="old-buyer")

    def order(customer: str, order_id: str, amount: int, days_ago: int) -> None:
        purchases.record_purchase(
            session,
            bed_shop.id,
            customer,
            purchases.PurchaseInput(
                order_id,
                utcnow() - timedelta(days=days_ago),
                "GBP",
                (purchases.LineInput("cat_dog_beds", amount, 1, purchases.Channel.physical),),
            ),
        )

    order("old-buyer", "old-first", 3_000, days_ago=60)
    order("old-buyer", "order-2", 5_000, days_ago=0)  # redeemed, but a returning customer
    order("new-buyer", "order-1", 12_000, days_ago=0)  # redeemed, and their first order
    order("new-buyer", "later", 4_000, days_ago=0)
    session.commit()
    redeem(session, first, order_id="order-1")
    redeem(session, second, order_id="order-2")
    start, end = utcnow() - timedelta(days=1), utcnow() + timedelta(days=1)
    for tenant in (story.setup.host, bed_shop):
        report = reports.for_partnership(session, tenant.id, story.setup.partnership_id, start, end)
        stats = report.as_host.total if tenant is story.setup.host else report.as_offering.total
        assert stats.redemptions == 2 and stats.unique_customers == 2
        assert (stats.new_customers, stats.new_customer_spend) == (1, {"GBP": 16_000})
    by_offer = reports.for_offer(session, bed_shop.id, story.offer.id, start, end).stats
    assert (by_offer.new_customers, by_offer.new_customer_spend) == (1, {"GBP": 16_000})


def test_concurrent_reports_of_one_order_record_it_once(
    engine: Engine, session: Session, shown_offer: Callable[..., ShownOffer]
) -> None:
    shown = shown_offer()
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def report() -> None:
        with Session(engine, expire_on_commit=False) as own:
            barrier.wait()
            try:
                recorded = redemptions.record(
                    own, shown.offering.id, RedemptionInput("same-order", 12_000, "GBP", code=shown.code), now=utcnow()
                )
                own.commit()
                outcomes.append("created" if recorded.created else "again")
            except DomainError as exc:
                outcomes.append(exc.code)

    threads = [threading.Thread(target=report) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["again", "again", "again", "created"], outcomes
    assert written(session) == (1, 2)
