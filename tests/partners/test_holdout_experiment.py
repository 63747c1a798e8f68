"""Holdouts on generated purchase histories: the held-out group sees nothing, its share matches the
setting within statistical tolerance, and the lift report recovers an injected effect."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlmodel import Session, col, select

from partners import exchange, holdout_report, holdouts, purchases
from partners.consent_rules import Action
from partners.customers import Customer
from partners.db import utcnow
from partners.lift import Verdict
from partners.notices import ConsentNotice
from partners.offers import Offer
from partners.settings import Settings
from tests.factories_exchange import buy, consent_to
from tests.factories_offers import OfferSetup

CUSTOMERS = 600
SHARE = 0.30
SHOWN_RATE, HELD_RATE = 0.5, 0.3  # the injected effect: +20 points of repeat purchases
ORDER_VALUE = 5000


def order(session: Session, tenant_id: str, external_id: str, order_id: str, at_days: float, currency: str) -> None:
    start = utcnow()
    line = purchases.LineInput("cat_flea_tick", ORDER_VALUE, 1, purchases.Channel.physical)
    purchase = purchases.PurchaseInput(order_id, start + timedelta(days=at_days), currency, (line,))
    purchases.record_purchase(session, tenant_id, external_id, purchase, now=start + timedelta(days=at_days))


def test_holdout_group_sees_nothing_share_holds_and_the_lift_is_recovered(
    session: Session,
    settings: Settings,
    make_live_offer: Callable[..., tuple[OfferSetup, Offer]],
    make_customer: Callable[..., Customer],
    make_notice: Callable[..., ConsentNotice],
) -> None:
    setup, _offer = make_live_offer(starts_at=utcnow() - timedelta(days=60))
    host = setup.host.id
    notice = make_notice(setup.host)
    asked_at = utcnow() - timedelta(days=40)
    names = [f"shopper-{i:04}" for i in range(CUSTOMERS)]
    for name in names:
        make_customer(setup.host, name)
        buy(session, host, name, "cat_dog_beds", 9000, days_ago=100)
        consent_to(session, host, name, setup.offering.id, Action.granted, notice.id)
    running = holdouts.set_for_partnership(
        session, host, setup.partnership_id, int(SHARE * 10_000), asked_at - timedelta(seconds=1)
    )
    assert running is not None
    session.commit()

    key = settings.secret_key.get_secret_value().encode()
    answers = {}
    for name in names:
        request = exchange.ExchangeRequest(name, exchange.Placement.email)
        answers[name] = exchange.answer(session, host, request, now=asked_at, code_key=key)
    session.commit()

    by_customer = {c.external_id: c.id for c in session.exec(select(Customer).where(col(Customer.tenant_id) == host))}
    groups = {
        a.customer_id: a.held_out
        for a in session.exec(
            select(holdouts.HoldoutAssignment).where(col(holdouts.HoldoutAssignment.holdout_id) == running.id)
        )
    }
    assert len(groups) == CUSTOMERS  # every eligible customer got a group, shown or not
    held = [n for n in names if groups[by_customer[n]]]
    shown = [n for n in names if not groups[by_customer[n]]]
    for name in held:
        assert answers[name].offers == [] and answers[name].decisions.get("holdout") == 1
    for name in shown:
        assert len(answers[name].offers) == 1
    share = len(held) / CUSTOMERS
    assert abs(share - SHARE) < 4 * (SHARE * (1 - SHARE) / CUSTOMERS) ** 0.5

    # Inject the effect: exact shares of each group buy again within the window, at the host.
    for group, rate in ((shown, SHOWN_RATE), (held, HELD_RATE)):
        for k, name in enumerate(group):
            if k % 10 < rate * 10:
                order(session, host, name, f"again-{name}", -35, "GBP")
    # Noise that must not count: orders after the window, and orders in another currency.
    for name in names[::7]:
        order(session, host, name, f"late-{name}", -2, "GBP")
        order(session, host, name, f"euro-{name}", -30, "EUR")
    session.commit()

    report = holdout_report.report(
        session,
        host,
        running.id,
        start=asked_at - timedelta(days=1),
        end=asked_at + timedelta(days=1),
        window_days=30,
        currency="GBP",
        now=utcnow(),
    )
    assert (report.shown.customers, report.held_out.customers) == (len(shown), len(held))
    assert report.still_in_window == 0
    expected_shown = sum(1 for k in range(len(shown)) if k % 10 < 5)
    expected_held = sum(1 for k in range(len(held)) if k % 10 < 3)
    assert (report.shown.repeaters, report.held_out.repeaters) == (expected_shown, expected_held)
    assert sum(report.shown.spend_minor) == expected_shown * ORDER_VALUE
    found = report.lift.repeat_rate
    assert found is not None and report.lift.verdict == Verdict.more_repeat_purchases
    true_lift = expected_shown / len(shown) - expected_held / len(held)
    assert abs(true_lift - (SHOWN_RATE - HELD_RATE)) < 0.02
    assert found.estimate == true_lift and found.low < SHOWN_RATE - HELD_RATE < found.high and found.low > 0
    spend = report.lift.spend_per_customer
    assert spend is not None and abs(spend.estimate - true_lift * ORDER_VALUE) < 1e-6
