"""Defection signals kept on the stored profiles: the daily reassessment, and the per-tenant list.

Orders set a customer's signals as they arrive (`interest_store.stored_values`). Silence changes
them without any order, so once a day the worker recomputes each shop's typical gap and then
every profile of the shop, a page at a time, writing only the rows whose signals changed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, and_, bindparam, func, select, update
from sqlmodel import Session

from partners import churn_risk, interest_store, interests, retention_baselines, retention_rules, survey_answers
from partners.churn_risk import OrderRhythm, RiskLevel
from partners.customers import Customer
from partners.db import UTCDateTime, unit_of_work, utcnow
from partners.errors import Invalid
from partners.offer_rules import EARLIEST, LATEST

log = logging.getLogger("partnerloop.churn")
PAGE = 5000
_PROFILES: Table = interest_store.CustomerProfile.__table__  # type: ignore[attr-defined]
_CUSTOMERS: Table = Customer.__table__  # type: ignore[attr-defined]
_DEFECTIONS: Table = survey_answers.CustomerDefection.__table__  # type: ignore[attr-defined]
# Expected gaps closer than this (days) count as unchanged: no rewrite for rounding noise.
_TOLERANCE_DAYS = 0.01

_UPDATE = (
    update(_PROFILES)
    .where(_PROFILES.c.tenant_id == bindparam("b_tenant"), _PROFILES.c.customer_id == bindparam("b_customer"))
    .values(
        expected_interval_days=bindparam("b_expected"),
        risk_level=bindparam("b_level"),
        risk_assessed_at=bindparam("b_at", type_=UTCDateTime()),
    )
)


@dataclass(frozen=True)
class Reassessed:
    tenant_id: str
    typical_interval_days: float
    repeat_customers: int
    profiles: int
    changed: int


def _gaps(session: Session, tenant_id: str) -> list[float]:
    query = select(_PROFILES.c.order_count, _PROFILES.c.first_order_at, _PROFILES.c.last_order_at).where(
        _PROFILES.c.tenant_id == tenant_id, _PROFILES.c.order_count >= 2
    )
    gaps = (churn_risk.own_mean_gap_days(OrderRhythm(*row)) for row in session.execute(query))
    return [gap for gap in gaps if gap is not None]


def _pages(session: Session, tenant_id: str) -> Iterator[Sequence[Any]]:
    columns = (
        _PROFILES.c.customer_id,
        _PROFILES.c.order_count,
        _PROFILES.c.first_order_at,
        _PROFILES.c.last_order_at,
        _PROFILES.c.expected_interval_days,
        _PROFILES.c.risk_level,
        _PROFILES.c.spend,
    )
    after = ""
    while True:
        query = (
            select(*columns)
            .where(_PROFILES.c.tenant_id == tenant_id, _PROFILES.c.customer_id > after)
            .order_by(_PROFILES.c.customer_id)
            .limit(PAGE)
        )
        rows = session.execute(query).all()
        if not rows:
            return
        yield rows
        after = str(rows[-1][0])


def reassess_tenant(session: Session, tenant_id: str, now: datetime) -> Reassessed:
    """Recompute the shop's typical gap, every profile's signals and the lifetime-value bands.

    Only profiles whose signals changed are written.
    """
    gaps = _gaps(session, tenant_id)
    typical = churn_risk.typical_interval_days(gaps)
    seen = changed = 0
    values: dict[str, list[int]] = defaultdict(list)
    for rows in _pages(session, tenant_id):
        updates = []
        for customer_id, count, first, last, stored_expected, stored_level, spend in rows:
            value = interests.lifetime_value(_spend_state(count, first, last, spend), now)
            values[value.currency].append(value.total_minor)
            assessment = churn_risk.assess(OrderRhythm(count, first, last), typical, now)
            same_gap = (
                stored_expected is not None
                and abs(float(stored_expected) - assessment.expected_interval_days) < _TOLERANCE_DAYS
            )
            if same_gap and stored_level == assessment.level:
                continue
            updates.append(
                {
                    "b_tenant": tenant_id,
                    "b_customer": customer_id,
                    "b_expected": assessment.expected_interval_days,
                    "b_level": str(assessment.level),
                    "b_at": now,
                }
            )
        if updates:
            session.connection().execute(_UPDATE, updates)
        seen += len(rows)
        changed += len(updates)
    bands = None
    if values:
        currency = min(values, key=lambda code: (-len(values[code]), code))
        bands = retention_rules.thresholds(currency, values[currency])
    retention_baselines.save(session, tenant_id, typical, len(gaps), bands, now)
    return Reassessed(tenant_id, typical, len(gaps), seen, changed)


def _spend_state(count: int, first: datetime, last: datetime, spend: Any) -> interests.ProfileState:
    """Enough of a profile for its lifetime value: counts, dates and spend (no interests)."""
    return interests.ProfileState(
        decay_ref=last,
        order_count=int(count),
        first_order_at=first,
        last_order_at=last,
        spend={code: interests.CurrencySpend(int(v[0]), int(v[1])) for code, v in dict(spend).items()},
        format_weights={},
        interests={},
    )


def tenants_with_profiles(session: Session) -> list[str]:
    """Every tenant holding at least one customer profile."""
    query = select(_PROFILES.c.tenant_id).distinct().order_by(_PROFILES.c.tenant_id)
    return [str(t) for t in session.execute(query).scalars()]


def reassess_all(engine: Engine, progress: Callable[[Reassessed], None] | None = None) -> int:
    """The daily job: every shop in its own transaction; the number of profiles whose signals changed."""
    with unit_of_work(engine) as session:
        tenants = tenants_with_profiles(session)
    changed = 0
    for tenant_id in tenants:
        with unit_of_work(engine) as session:
            done = reassess_tenant(session, tenant_id, utcnow())
        log.info(
            "churn risk reassessed: tenant %s, %d profiles, %d changed, typical gap %.1f days",
            tenant_id,
            done.profiles,
            done.changed,
            done.typical_interval_days,
        )
        if progress is not None:
            progress(done)
        changed += done.changed
    return changed


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AtRisk:
    customer_id: str
    external_id: str
    level: RiskLevel
    order_count: int
    last_order_at: datetime
    expected_interval_days: float
    next_order_due_at: datetime
    days_overdue: float
    lifetime_value: interests.LifetimeValue
    assessed_at: datetime
    defection_reasons: list[str] | None  # from their latest defection-survey answer
    defection_answered_at: datetime | None


@dataclass(frozen=True)
class RiskFilter:
    levels: tuple[RiskLevel, ...] = ()
    min_orders: int | None = None
    last_order_before: datetime | None = None


def check_filter(wanted: RiskFilter) -> RiskFilter:
    """Invalid, naming the parameter, for a time filter outside 2000–2999."""
    before = wanted.last_order_before
    if before is not None and not (EARLIEST <= before < LATEST):
        raise Invalid("last_order_before must fall between the years 2000 and 2999.", param="last_order_before")
    return wanted


def counts_by_level(session: Session, tenant_id: str) -> dict[str, int]:
    """How many of the shop's customers with orders are at each level (every level listed)."""
    query = (
        select(_PROFILES.c.risk_level, func.count())
        .where(_PROFILES.c.tenant_id == tenant_id, _PROFILES.c.risk_level.is_not(None))
        .group_by(_PROFILES.c.risk_level)
    )
    counts = {str(level): 0 for level in churn_risk.LEVELS}
    for level, count in session.execute(query):
        counts[str(level)] = int(count)
    return counts


def list_customers(
    session: Session, tenant_id: str, wanted: RiskFilter, after: str | None, limit: int, now: datetime
) -> tuple[list[AtRisk], bool]:
    """The shop's assessed customers matching the filter, a page at a time in customer-id order."""
    p, c, d = _PROFILES, _CUSTOMERS, _DEFECTIONS
    query = (
        select(
            p.c.customer_id,
            c.c.external_id,
            p.c.risk_level,
            p.c.order_count,
            p.c.first_order_at,
            p.c.last_order_at,
            p.c.expected_interval_days,
            p.c.spend,
            p.c.risk_assessed_at,
            d.c.reasons,
            d.c.answered_at,
        )
        .join(c, and_(c.c.tenant_id == p.c.tenant_id, c.c.id == p.c.customer_id))
        .outerjoin(d, and_(d.c.tenant_id == p.c.tenant_id, d.c.customer_id == p.c.customer_id))
        .where(p.c.tenant_id == tenant_id, p.c.risk_level.is_not(None))
    )
    if wanted.levels:
        query = query.where(p.c.risk_level.in_([str(level) for level in wanted.levels]))
    if wanted.min_orders is not None:
        query = query.where(p.c.order_count >= wanted.min_orders)
    if wanted.last_order_before is not None:
        query = query.where(p.c.last_order_at < wanted.last_order_before)
    if after is not None:
        query = query.where(p.c.customer_id > after)
    rows = session.execute(query.order_by(p.c.customer_id).limit(limit + 1)).all()
    return [_at_risk(row, now) for row in rows[:limit]], len(rows) > limit


def _at_risk(row: Sequence[Any], now: datetime) -> AtRisk:
    customer_id, external_id, level, count, first, last, expected, spend, assessed, reasons, answered = row
    state = _spend_state(count, first, last, spend)
    gap = float(expected)
    silent = max(0.0, (now - last).total_seconds() / 86400)
    return AtRisk(
        customer_id=str(customer_id),
        external_id=str(external_id),
        level=RiskLevel(str(level)),
        order_count=int(count),
        last_order_at=last,
        expected_interval_days=gap,
        next_order_due_at=churn_risk.due_at(last, gap),
        days_overdue=max(0.0, silent - gap),
        lifetime_value=interests.lifetime_value(state, now),
        assessed_at=assessed,
        defection_reasons=list(reasons) if reasons is not None else None,
        defection_answered_at=answered,
    )


def level_of(session: Session, tenant_id: str, customer_id: str) -> RiskLevel | None:
    """A customer's stored risk level, None before their first order."""
    profile = session.get(interest_store.CustomerProfile, (tenant_id, customer_id))
    if profile is None or profile.risk_level is None:
        return None
    return RiskLevel(profile.risk_level)
