"""Defection signals on stored profiles: set by each order, by bulk ingest, and by the daily job."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from partners import churn_risk, churn_signals, interest_store, interests, interests_batch, retention_baselines
from partners.churn_risk import RiskLevel
from partners.customers import Customer
from partners.db import utcnow
from partners.purchases import Channel, LineInput, PurchaseInput, record_purchase
from partners.retailers import Tenant

BED = LineInput("cat_orthopedic_dog_beds", 8900, 1, Channel.physical)


def buy(session: Session, customer: Customer, order_id: str, days_ago: float) -> None:
    at = utcnow() - timedelta(days=days_ago)
    record_purchase(session, customer.tenant_id, customer.external_id, PurchaseInput(order_id, at, "GBP", (BED,)))


def stored(session: Session, customer: Customer) -> interest_store.CustomerProfile:
    session.expire_all()
    profile = session.get(interest_store.CustomerProfile, (customer.tenant_id, customer.id))
    assert profile is not None
    return profile


def test_each_order_sets_the_signals_and_a_new_order_makes_the_customer_active_again(
    session: Session, make_customer: Callable[..., Customer]
) -> None:
    customer = make_customer()
    buy(session, customer, "o-1", 200)
    buy(session, customer, "o-2", 150)
    buy(session, customer, "o-3", 100)
    profile = stored(session, customer)
    # Own gap 50 days, shop default 60: (2·50 + 60) / 3 ≈ 53.3; 100 days silent ≈ 1.9 gaps.
    assert profile.expected_interval_days is not None
    assert abs(profile.expected_interval_days - 160 / 3) < 0.01
    assert profile.risk_level == RiskLevel.cooling and profile.risk_assessed_at is not None
    buy(session, customer, "o-4", 1)
    assert stored(session, customer).risk_level == RiskLevel.active


def test_bulk_ingest_stores_the_same_signals_as_order_by_order(
    session: Session, make_tenant: Callable[..., Tenant], make_customer: Callable[..., Customer]
) -> None:
    tenant = make_tenant()
    one, other = make_customer(tenant, "one"), make_customer(tenant, "other")
    for n, days in enumerate((300, 220, 140)):
        buy(session, one, f"a-{n}", days)
    session.commit()
    now = utcnow()
    orders = [
        interests.OrderFacts(
            now - timedelta(days=d), "GBP", (interests.LineFacts(BED.category_id, 8900, 1, "physical"),)
        )
        for d in (300, 220, 140)
    ]
    interests_batch.record_orders(session, tenant.id, {other.id: orders})
    session.commit()
    single, batch = stored(session, one), stored(session, other)
    assert batch.risk_level == single.risk_level == RiskLevel.cooling  # 140 days against ≈73
    assert batch.expected_interval_days is not None and single.expected_interval_days is not None
    assert abs(batch.expected_interval_days - single.expected_interval_days) < 1e-6


def test_the_daily_job_moves_silent_customers_and_uses_the_shops_own_rhythm(
    engine: Engine, session: Session, make_tenant: Callable[..., Tenant], make_customer: Callable[..., Customer]
) -> None:
    tenant = make_tenant()
    # Ten repeat customers ordering every 20 days, the last order 5 days ago: the shop's rhythm is 20 days.
    for i in range(churn_risk.MIN_REPEAT_CUSTOMERS):
        regular = make_customer(tenant, f"regular-{i}")
        buy(session, regular, f"r-{i}-1", 25)
        buy(session, regular, f"r-{i}-2", 5)
    # A one-order customer 55 days ago: active against the default 60 days, not against 20.
    newcomer = make_customer(tenant, "newcomer")
    buy(session, newcomer, "n-1", 55)
    session.commit()
    assert stored(session, newcomer).risk_level == RiskLevel.active
    seen: list[churn_signals.Reassessed] = []
    changed = churn_signals.reassess_all(engine, seen.append)
    mine = next(r for r in seen if r.tenant_id == tenant.id)
    assert abs(mine.typical_interval_days - 20.0) < 0.01 and mine.repeat_customers == 10
    assert mine.profiles == 11 and mine.changed >= 1 and changed >= mine.changed
    # 55 days against a 20-day rhythm is 2.75 gaps: at risk.
    assert stored(session, newcomer).risk_level == RiskLevel.at_risk
    assert retention_baselines.typical_days(session, tenant.id) == mine.typical_interval_days
    # Nothing changed since: the second run writes nothing.
    again: list[churn_signals.Reassessed] = []
    churn_signals.reassess_all(engine, again.append)
    assert next(r for r in again if r.tenant_id == tenant.id).changed == 0


def test_reassessment_follows_the_clock(session: Session, make_customer: Callable[..., Customer]) -> None:
    customer = make_customer()
    buy(session, customer, "o-1", 10)
    session.commit()
    assert stored(session, customer).risk_level == RiskLevel.active
    later = utcnow() + timedelta(days=300)
    done = churn_signals.reassess_tenant(session, customer.tenant_id, later)
    session.commit()
    assert done.changed == 1 and stored(session, customer).risk_level == RiskLevel.lapsed


def test_listing_filters_by_level_and_counts_every_level(
    session: Session, make_tenant: Callable[..., Tenant], make_customer: Callable[..., Customer]
) -> None:
    tenant, elsewhere = make_tenant(), make_tenant()
    for name, days in (("fresh", 5), ("cool", 100), ("risky", 170), ("gone", 400)):
        buy(session, make_customer(tenant, name), f"{name}-1", days)
    buy(session, make_customer(elsewhere, "foreign"), "f-1", 400)
    session.commit()
    counts = churn_signals.counts_by_level(session, tenant.id)
    assert counts == {"active": 1, "cooling": 1, "at_risk": 1, "lapsed": 1}
    wanted = churn_signals.RiskFilter(levels=(RiskLevel.at_risk, RiskLevel.lapsed))
    rows, more = churn_signals.list_customers(session, tenant.id, wanted, None, 10, utcnow())
    assert sorted(r.external_id for r in rows) == ["gone", "risky"] and not more
    risky = next(r for r in rows if r.external_id == "risky")
    assert abs(risky.days_overdue - 110) < 0.1 and risky.lifetime_value.historic_minor == 8900
    first, more = churn_signals.list_customers(session, tenant.id, churn_signals.RiskFilter(), None, 3, utcnow())
    rest, _ = churn_signals.list_customers(
        session, tenant.id, churn_signals.RiskFilter(), first[-1].customer_id, 3, utcnow()
    )
    assert more and len(first) == 3 and len(rest) == 1
