"""What the exchange reads, as two statements built once, and how their rows become rule inputs.

Both statements take only what the request carries (host, customer external id, clock), so a
driver can send them together in one round trip: the serving query finds the customer's
consents through the customer's external id itself. Built once, SQLAlchemy caches their
compiled form and psycopg prepares them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, Select, Table, and_, bindparam, func, literal, select
from sqlalchemy.orm import aliased

from partners import impressions, interest_store, interests, live_offers, ranking, retention_baselines, retention_rules
from partners.churn_risk import RiskLevel
from partners.consent_ledger import ConsentState
from partners.consent_rules import ALL_PARTNERS, Purpose, granted_for_partner
from partners.customers import Customer as CustomerRow
from partners.db import UTCDateTime
from partners.exchange_rules import Caps, Counts, Customer, Serving
from partners.live_offers import LiveOfferRow
from partners.partnerships import Partnership
from partners.profiles import RetailerProfile
from partners.terms import PartnershipTerms


def _customer_query() -> Select[tuple[object, ...]]:
    customer: Table = CustomerRow.__table__  # type: ignore[attr-defined]
    profile: Table = interest_store.CustomerProfile.__table__  # type: ignore[attr-defined]
    interest: Table = interest_store.CustomerInterest.__table__  # type: ignore[attr-defined]
    shown: Table = impressions.Impression.__table__  # type: ignore[attr-defined]
    baseline: Table = retention_baselines.RetentionBaseline.__table__  # type: ignore[attr-defined]

    def host_band(name: str) -> ScalarSelect[Any]:
        return select(baseline.c[name]).where(baseline.c.tenant_id == customer.c.tenant_id).scalar_subquery()

    def shown_since(name: str) -> ScalarSelect[int]:
        return (
            select(func.count())
            .where(
                shown.c.tenant_id == customer.c.tenant_id,
                shown.c.customer_id == customer.c.id,
                shown.c.created_at > bindparam(name, type_=UTCDateTime()),
            )
            .scalar_subquery()
        )

    same_customer = (profile.c.tenant_id == customer.c.tenant_id, profile.c.customer_id == customer.c.id)
    return (
        select(
            customer.c.id,
            shown_since("week"),
            shown_since("month"),
            profile.c.decay_ref,
            profile.c.order_count,
            profile.c.first_order_at,
            profile.c.last_order_at,
            profile.c.spend,
            profile.c.format_weights,
            interest.c.category_id,
            interest.c.weight,
            interest.c.order_count,
            interest.c.last_order_at,
            interest.c.prices,
            profile.c.risk_level,
            host_band("ltv_currency"),
            host_band("ltv_median_minor"),
            host_band("ltv_top_minor"),
        )
        .select_from(
            customer.outerjoin(profile, and_(*same_customer)).outerjoin(
                interest,
                and_(interest.c.tenant_id == profile.c.tenant_id, interest.c.customer_id == profile.c.customer_id),
            )
        )
        .where(customer.c.tenant_id == bindparam("host"), customer.c.external_id == bindparam("external_id"))
        .order_by(interest.c.category_id)
    )


def _serving_query() -> Select[tuple[object, ...]]:
    live = live_offers.LiveOffer.__table__  # type: ignore[attr-defined]
    terms = PartnershipTerms.__table__  # type: ignore[attr-defined]
    partnership = Partnership.__table__  # type: ignore[attr-defined]
    profile = RetailerProfile.__table__  # type: ignore[attr-defined]
    customer: Table = CustomerRow.__table__  # type: ignore[attr-defined]
    state = ConsentState.__table__  # type: ignore[attr-defined]
    named, every = aliased(state, name="named_consent"), aliased(state, name="all_consent")
    # The customer's id by its external id: one primary-key lookup the planner runs once.
    customer_id = (
        select(customer.c.id)
        .where(customer.c.tenant_id == bindparam("host"), customer.c.external_id == bindparam("external_id"))
        .scalar_subquery()
    )

    def consent(alias: Any, partner: Any) -> ColumnElement[bool]:
        return and_(
            alias.c.tenant_id == live.c.tenant_id,
            alias.c.customer_id == customer_id,
            alias.c.purpose == str(Purpose.partner_offers),
            alias.c.partner == partner,
        )

    query = live_offers.LIVE_QUERY  # the live rows of the host in their window, active partnerships only
    return (
        query.add_columns(
            terms.c.cap_per_7_days,
            terms.c.cap_per_30_days,
            terms.c.reciprocity_target,
            # A lookup by primary key per row (a join let the planner hash all partners' profiles).
            select(profile.c.display_name).where(profile.c.tenant_id == live.c.offering_tenant_id).scalar_subquery(),
            named.c.status,
            every.c.status,
        )
        .outerjoin(
            terms,
            and_(
                terms.c.tenant_id == partnership.c.tenant_id,
                terms.c.partnership_id == partnership.c.id,
                terms.c.version == partnership.c.agreed_version,
            ),
        )
        .outerjoin(named, consent(named, live.c.offering_tenant_id))
        .outerjoin(every, consent(every, literal(ALL_PARTNERS)))
    )


CUSTOMER_QUERY = _customer_query()
SERVING_QUERY = _serving_query()
_FIELDS = len(live_offers.LIVE_QUERY.selected_columns)


def params(host_tenant_id: str, external_id: str, now: datetime) -> dict[str, Any]:
    """The bind parameters of both statements."""
    return {
        "host": host_tenant_id,
        "external_id": external_id,
        "now": now,
        "week": now - impressions.WEEK,
        "month": now - impressions.MONTH,
    }


def customer_of(
    rows: Sequence[Sequence[Any]], cart: tuple[str, ...], now: datetime
) -> tuple[Customer, impressions.RecentCounts] | None:
    """The customer and its recent impression counts from `CUSTOMER_QUERY`'s rows; None if unknown."""
    if not rows:
        return None
    first = rows[0]
    counts = impressions.RecentCounts(last_7_days=int(first[1]), last_30_days=int(first[2]))
    ltv_bands = None
    if first[15] is not None and first[16] is not None and first[17] is not None:
        ltv_bands = retention_rules.LtvThresholds(str(first[15]), int(first[16]), int(first[17]))
    if first[3] is None:
        nobody = retention_rules.Shopper(None, None, None)
        return Customer(str(first[0]), 0, None, None, ranking.Shopper({}, {}, cart), nobody, None), counts
    profile = interest_store.stored_state(
        interest_store.StoredProfile(*first[3:9]),
        [interest_store.StoredInterest(*row[9:14]) for row in rows if row[9] is not None],
    )
    price_bands = {c: band for c in profile.interests if (band := profile.price_band(c)) is not None}
    value = interests.lifetime_value(profile, now)
    shopper = ranking.Shopper(profile.affinities(), price_bands, cart)
    risk = RiskLevel(str(first[14])) if first[14] is not None else None
    retention = retention_rules.Shopper(risk, value.total_minor, value.currency)
    value_band = retention_rules.ltv_band(retention, ltv_bands)
    customer = Customer(
        str(first[0]), profile.order_count, value.total_minor, value.currency, shopper, retention, value_band
    )
    return customer, counts


def servings_of(rows: Sequence[Sequence[Any]]) -> list[Serving]:
    """The offers the host serves now from `SERVING_QUERY`'s rows."""
    found = []
    for row in rows:
        cap_7, cap_30, target, name, named, every = row[_FIELDS:]
        caps = Caps(int(cap_7), int(cap_30), float(target)) if cap_7 is not None else None
        offer = LiveOfferRow(*row[:_FIELDS])
        counts = Counts(offer.offer_impressions, offer.offer_redemptions, offer.given, offer.received)
        found.append(Serving(offer, caps, name or "", granted_for_partner(named, every), counts))
    return found
