"""Redemptions: attribution to the impression, single-use codes, idempotency, the ledger, reports."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlmodel import Session

from partners import ledger, outbox, redemptions, reports
from partners.db import utcnow
from partners.errors import Conflict, Invalid, NotFound
from partners.impressions import ReceivedImpression
from partners.ledger import LedgerEntry
from partners.offers import Offer
from partners.redemptions import Redemption, RedemptionInput
from partners.retailers import Tenant
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


def test_the_whole_story(session: Session, shown_offer: Callable[..., ShownOffer]) -> None:
    shown = shown_offer()
    recorded = redeem(session, shown)
    red = recorded.redemption
    assert recorded.created
    assert red.impression_id == shown.impression_id, "attributed to the impression that showed the code"
    assert red.host_tenant_id == shown.host.id and red.partnership_id == shown.partnership_id
    assert (red.commission_bps, red.commission) == (1000, 1200), "10% of the order value"

    with pytest.raises(Conflict):
        redeem(session, shown, order_id="order-2")
    session.rollback()
    assert written(session) == (1, 2), "the refused second redemption wrote nothing"

    offer = session.get(Offer, (shown.offering.id, red.offer_id))
    assert offer is not None and offer.used_redemptions == 1
    [event] = outbox.pending(session, shown.offering.id, redemptions.REDEMPTION_RECORDED)
    assert event.recipient == shown.host.id and event.payload["redemption_id"] == red.id

    [host_month] = ledger.monthly(session, shown.host.id, shown.partnership_id)
    assert host_month.owed_to_me["GBP"].net == 1200 and not host_month.owed_by_me
    assert (host_month.impressions_given, host_month.impressions_received) == (1, 0)
    assert host_month.reciprocity_balance == 1
    [offering_month] = ledger.monthly(session, shown.offering.id, shown.partnership_id)
    assert offering_month.owed_by_me["GBP"].net == 1200 and not offering_month.owed_to_me
    assert (offering_month.impressions_given, offering_month.impressions_received) == (0, 1)
    for side in (shown.host.id, shown.offering.id):
        assert [e.redemption_id for e in ledger.entries(session, side, shown.partnership_id)] == [red.id]

    start, end = utcnow() - timedelta(days=1), utcnow() + timedelta(days=1)
    host_report = reports.for_partnership(session, shown.host.id, shown.partnership_id, start, end)
    offering_report = reports.for_partnership(session, shown.offering.id, shown.partnership_id, start, end)
    for stats in (host_report.as_host, offering_report.as_offering):
        assert (stats.impressions, stats.unique_customers, stats.redemptions) == (1, 1, 1)
        assert stats.conversion_rate == 1.0
        assert stats.revenue == {"GBP": 12_000} and stats.commission == {"GBP": 1200}
    assert host_report.as_offering.impressions == 0 and offering_report.as_host.impressions == 0
    by_offer = reports.for_offer(session, shown.offering.id, red.offer_id, start, end).stats
    assert (by_offer.impressions, by_offer.redemptions) == (1, 1)
    with pytest.raises(NotFound):
        reports.for_offer(session, shown.host.id, red.offer_id, start, end)

    reversed_ = redemptions.reverse(session, shown.offering.id, red.id, "refund", now=utcnow())
    session.commit()
    assert reversed_.reversed_at is not None
    redemptions.reverse(session, shown.offering.id, red.id, "refund", now=utcnow())
    session.commit()
    assert written(session) == (1, 4), "reversing twice nets once"
    for side, direction in ((shown.host.id, "owed_to_me"), (shown.offering.id, "owed_by_me")):
        [month] = ledger.monthly(session, side, shown.partnership_id)
        money = getattr(month, direction)["GBP"]
        assert (money.commissions, money.reversals, money.net) == (1200, -1200, 0)
    after = reports.for_partnership(session, shown.host.id, shown.partnership_id, start, end).as_host
    assert (after.redemptions, after.reversed, after.revenue) == (0, 1, {})
    assert outbox.pending(session, shown.offering.id, redemptions.REDEMPTION_REVERSED)


def test_the_same_order_again_is_the_same_redemption(session: Session, shown_offer: Callable[..., ShownOffer]) -> None:
    shown = shown_offer()
    first = redeem(session, shown)
    again = redeem(session, shown)
    assert not again.created and again.redemption.id == first.redemption.id
    with pytest.raises(Conflict):
        redeem(session, shown, order_value=5_000)
    session.rollback()
    assert written(session) == (1, 2)


def test_by_impression_id_without_a_code(session: Session, shown_offer: Callable[..., ShownOffer]) -> None:
    shown = shown_offer(pool=0)  # no code mode: the impression is quoted instead
    red = redeem(session, shown, code=None, impression_id=shown.impression_id).redemption
    assert red.impression_id == shown.impression_id


def test_bad_input_writes_nothing(
    session: Session, shown_offer: Callable[..., ShownOffer], make_tenant: Callable[..., Tenant]
) -> None:
    shown = shown_offer()
    with pytest.raises(NotFound):
        redeem(session, shown, code="NOSUCHCODE")
    with pytest.raises(NotFound):
        redeem(session, shown, code=None, impression_id="imp_unknown")
    with pytest.raises(Invalid):
        redeem(session, shown, currency="EUR")
    with pytest.raises(Invalid):
        redeem(session, shown, code=None)
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


def test_outside_the_attribution_window(session: Session, shown_offer: Callable[..., ShownOffer]) -> None:
    shown = shown_offer()
    table = ReceivedImpression.__table__  # type: ignore[attr-defined]
    session.execute(update(table).values(created_at=utcnow() - timedelta(days=31)))  # the window is 30 days
    session.commit()
    with pytest.raises(Invalid, match="attribution window"):
        redeem(session, shown)
    session.rollback()
    assert written(session) == (0, 0)
    # Before the impression is outside the window too.
    with pytest.raises(Invalid):
        redeem(session, shown, redeemed_at=utcnow() - timedelta(days=40))
