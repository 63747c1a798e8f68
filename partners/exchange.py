"""The exchange: which partner offers may this customer see now, at this placement.

An offer is shown only if every rule holds (each refusal is counted by reason):
the partnership is active and its terms allow the offer's categories, the offer is
approved, live, in its window and within budget, and no brand-safety rule of either
side forbids it (all kept true by `live_offers`, refreshed when data changes); the
customer holds a valid `partner_offers` consent covering that partner; the offer's
targeting fits (new or returning, lifetime value, region, early access not yet public);
the host's frequency caps are not reached; and the offer is relevant (`ranking`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, Select, Table, and_, bindparam, func, literal, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from partners import (
    codes,
    disclosures,
    holdouts,
    impressions,
    interests,
    live_offers,
    ranking,
    retention_baselines,
    retention_rules,
)
from partners.churn_risk import RiskLevel
from partners.consent_ledger import ConsentState
from partners.consent_rules import ALL_PARTNERS, Purpose, granted_for_partner
from partners.customers import Customer
from partners.db import UTCDateTime, execute_together
from partners.ids import new_id
from partners.live_offers import LiveOfferRow
from partners.partnerships import Partnership
from partners.profiles import RetailerProfile
from partners.taxonomy import load_taxonomy
from partners.terms import PartnershipTerms

MAX_OFFERS = 10


class Placement(StrEnum):
    order_confirmation = "order_confirmation"
    email = "email"
    account_page = "account_page"
    win_back = "win_back"  # the host's re-engagement email: customers at risk or lapsed only
    appreciation = "appreciation"  # gifts and early access for the host's best customers by lifetime value
    survey_thank_you = "survey_thank_you"  # the page after a customer answered one of the host's surveys


@dataclass(frozen=True)
class ExchangeRequest:
    customer_external_id: str
    placement: Placement
    limit: int = 3
    cart_categories: tuple[str, ...] = ()
    region: str | None = None
    one_per_partner: bool = True
    dry_run: bool = False


@dataclass(frozen=True)
class OfferShown:
    impression_id: str | None
    offer: LiveOfferRow
    partner_name: str
    code: str | None
    rank: int
    score: float


@dataclass
class ExchangeResult:
    answer_id: str | None
    offers: list[OfferShown] = field(default_factory=list)
    decisions: dict[str, int] = field(default_factory=dict)

    def refuse(self, reason: str) -> None:
        self.decisions[reason] = self.decisions.get(reason, 0) + 1


@dataclass(frozen=True)
class _Customer:
    id: str
    orders: int
    lifetime_value: int | None
    currency: str | None
    shopper: ranking.Shopper
    retention: retention_rules.Shopper
    band: retention_rules.LtvBand | None


@dataclass(frozen=True)
class _Caps:
    per_7_days: int
    per_30_days: int
    reciprocity_target: float


def customer_ref(key: bytes, host_tenant_id: str, customer_id: str) -> str:
    """A pseudonym for the host's customer that the offering side may hold on a reserved code."""
    return hmac.new(key, f"{host_tenant_id}|{customer_id}".encode(), hashlib.sha256).hexdigest()[:32]


# The hot path reads with two statements built once (so SQLAlchemy caches their compiled form and
# psycopg prepares them): the customer with its profile, interests and recent impression counts,
# then the host's live offers with their terms, the partner's name and the customer's consent.


def _customer_query() -> Select[tuple[object, ...]]:
    customer: Table = Customer.__table__  # type: ignore[attr-defined]
    profile: Table = interests.CustomerProfile.__table__  # type: ignore[attr-defined]
    interest: Table = interests.CustomerInterest.__table__  # type: ignore[attr-defined]
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
    state = ConsentState.__table__  # type: ignore[attr-defined]
    named, every = aliased(state, name="named_consent"), aliased(state, name="all_consent")

    def consent(alias: Any, partner: Any) -> ColumnElement[bool]:
        return and_(
            alias.c.tenant_id == live.c.tenant_id,
            alias.c.customer_id == bindparam("customer"),
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


@dataclass(frozen=True, slots=True)
class _Serving:
    offer: LiveOfferRow
    caps: _Caps | None
    partner_name: str
    consented: bool


def _load_customer(
    session: Session, host_tenant_id: str, external_id: str, cart: tuple[str, ...], now: datetime
) -> tuple[_Customer, impressions.RecentCounts] | None:
    params = {
        "host": host_tenant_id,
        "external_id": external_id,
        "week": now - impressions.WEEK,
        "month": now - impressions.MONTH,
    }
    rows = session.execute(CUSTOMER_QUERY, params).all()
    if not rows:
        return None
    first = rows[0]
    counts = impressions.RecentCounts(last_7_days=int(first[1]), last_30_days=int(first[2]))
    ltv_bands = None
    if first[15] is not None and first[16] is not None and first[17] is not None:
        ltv_bands = retention_rules.LtvThresholds(str(first[15]), int(first[16]), int(first[17]))
    if first[3] is None:
        nobody = retention_rules.Shopper(None, None, None)
        return _Customer(str(first[0]), 0, None, None, ranking.Shopper({}, {}, cart), nobody, None), counts
    profile = interests.stored_state(
        interests.StoredProfile(*first[3:9]),
        [interests.StoredInterest(*row[9:14]) for row in rows if row[9] is not None],
    )
    price_bands = {c: band for c in profile.interests if (band := profile.price_band(c)) is not None}
    value = interests.lifetime_value(profile, now)
    shopper = ranking.Shopper(profile.affinities(), price_bands, cart)
    risk = RiskLevel(str(first[14])) if first[14] is not None else None
    retention = retention_rules.Shopper(risk, value.total_minor, value.currency)
    value_band = retention_rules.ltv_band(retention, ltv_bands)
    customer = _Customer(
        str(first[0]), profile.order_count, value.total_minor, value.currency, shopper, retention, value_band
    )
    return customer, counts


def _serving(session: Session, host_tenant_id: str, customer_id: str, now: datetime) -> list[_Serving]:
    rows = session.execute(SERVING_QUERY, {"host": host_tenant_id, "now": now, "customer": customer_id}).all()
    found = []
    for row in rows:
        cap_7, cap_30, target, name, named, every = row[_FIELDS:]
        caps = _Caps(int(cap_7), int(cap_30), float(target)) if cap_7 is not None else None
        found.append(_Serving(LiveOfferRow(*row[:_FIELDS]), caps, name or "", granted_for_partner(named, every)))
    return found


def _targeting_refusal(offer: LiveOfferRow, customer: _Customer, region: str | None, now: datetime) -> str | None:
    if offer.kind == "early_access" and offer.public_sale_starts_at is not None and now >= offer.public_sale_starts_at:
        return "sale_public"
    if offer.customer_type == "new" and customer.orders > 1:
        return "targeting_customer_type"
    if offer.customer_type == "returning" and customer.orders < 2:
        return "targeting_customer_type"
    if offer.min_lifetime_value is not None and (
        customer.lifetime_value is None
        or customer.currency != offer.currency
        or customer.lifetime_value < offer.min_lifetime_value
    ):
        return "targeting_lifetime_value"
    if offer.regions and region not in offer.regions:
        return "targeting_region"
    return None


@dataclass
class _Holdouts:
    """The host's running holdouts, and the groups this call found the customer in (to record)."""

    running: dict[tuple[str, str], holdouts.RunningHoldout]
    key: bytes
    groups: dict[str, bool] = field(default_factory=dict)


def _retention_refusal(offer: LiveOfferRow, customer: _Customer, placement: Placement) -> str | None:
    """The retention rules an offer must pass: the placement's kinds, risk-level and value-band targeting."""
    return (
        retention_rules.placement_kind_refusal(placement, offer.kind)
        or retention_rules.risk_targeting_refusal(offer.risk_levels, customer.retention)
        or retention_rules.band_targeting_refusal(offer.lifetime_value_bands, customer.band)
    )


def _holdout_refusal(offer: LiveOfferRow, host_tenant_id: str, customer: _Customer, held: _Holdouts) -> str | None:
    """Refuse an otherwise eligible offer to a customer held out of it, noting their group either way."""
    holdout = holdouts.holdout_for(held.running, offer.partnership_id, offer.offer_id)
    if holdout is None:
        return None
    out = holdouts.is_held_out(held.key, host_tenant_id, holdout.id, customer.id, holdout.share_bps)
    held.groups[holdout.id] = out
    return "holdout" if out else None


def _candidates(
    session: Session,
    host_tenant_id: str,
    customer: _Customer,
    request: ExchangeRequest,
    now: datetime,
    result: ExchangeResult,
    held: _Holdouts,
) -> tuple[dict[str, _Serving], list[ranking.Candidate]]:
    by_key: dict[str, _Serving] = {}
    candidates = []
    for serving in _serving(session, host_tenant_id, customer.id, now):
        offer = serving.offer
        # The query joins active partnerships only, so "all partners" consent covers the partner here.
        if not serving.consented:
            result.refuse("no_consent")
            continue
        refusal = _targeting_refusal(offer, customer, request.region, now)
        if refusal is not None or serving.caps is None:
            result.refuse(refusal or "no_terms")
            continue
        refusal = _retention_refusal(offer, customer, request.placement)
        if refusal is not None:
            result.refuse(refusal)
            continue
        # Last: only customers for whom the offer is otherwise eligible enter the holdout's groups.
        refusal = _holdout_refusal(offer, host_tenant_id, customer, held)
        if refusal is not None:
            result.refuse(refusal)
            continue
        key = f"{offer.partnership_id}/{offer.offer_id}"
        by_key[key] = serving
        candidates.append(
            ranking.Candidate(
                key=key,
                partner=offer.offering_tenant_id,
                categories=tuple(offer.categories),
                price_min=offer.price_min,
                price_max=offer.price_max,
                impressions=offer.offer_impressions,
                redemptions=offer.offer_redemptions,
                given=offer.given,
                received=offer.received,
                reciprocity_target=serving.caps.reciprocity_target,
            )
        )
    return by_key, candidates


def answer(
    session: Session, host_tenant_id: str, request: ExchangeRequest, *, now: datetime, code_key: bytes
) -> ExchangeResult:
    """The partner offers to show the customer now, best first; recorded unless a dry run."""
    result = ExchangeResult(answer_id=None if request.dry_run else new_id("exa"))
    found = _load_customer(session, host_tenant_id, request.customer_external_id, request.cart_categories, now)
    if found is None:
        # An unknown customer gets the same empty answer as one with nothing to show.
        result.refuse("unknown_customer")
        _record(session, host_tenant_id, request, None, result, [], now)
        return result
    customer, counts = found
    # Win-back and appreciation are for some customers only: anyone else gets an empty answer.
    not_here = retention_rules.placement_refusal(request.placement, customer.retention, customer.band)
    if not_here is not None:
        result.refuse(not_here)
        _record(session, host_tenant_id, request, customer.id, result, [], now)
        return result
    held = _Holdouts(holdouts.running_for_host(session, host_tenant_id), code_key)
    by_key, candidates = _candidates(session, host_tenant_id, customer, request, now, result, held)
    if not request.dry_run:
        holdouts.assignments_write(session, host_tenant_id, customer.id, held.groups, now)
    ranked = ranking.rank(load_taxonomy(), customer.shopper, candidates)
    result.decisions["not_relevant"] = result.decisions.get("not_relevant", 0) + len(candidates) - len(ranked)
    chosen: list[ranking.Ranked] = []
    partners_chosen: set[str] = set()
    for entry in ranked:
        cap = by_key[str(entry.candidate.key)].caps
        assert cap is not None
        shown_so_far = len(chosen)
        if counts.last_7_days + shown_so_far >= cap.per_7_days or counts.last_30_days + shown_so_far >= cap.per_30_days:
            result.refuse("frequency_cap")
            continue
        if request.one_per_partner and entry.candidate.partner in partners_chosen:
            result.refuse("one_per_partner")
            continue
        if len(chosen) == request.limit:
            result.refuse("limit")
            continue
        chosen.append(entry)
        partners_chosen.add(entry.candidate.partner)
    shown: list[impressions.Shown] = []
    disclosed: list[str] = []
    for entry in chosen:
        serving = by_key[str(entry.candidate.key)]
        offer = serving.offer
        code = _code_for(session, offer, host_tenant_id, customer.id, request.dry_run, code_key)
        if offer.code_mode == "pool" and code is None and not request.dry_run:
            live_offers.refresh_offer(session, offer.offering_tenant_id, offer.offer_id)
            result.refuse("no_code")
            continue
        if offer.code_mode == "pool" and not request.dry_run:
            # The offering side now holds a pseudonym of this customer on the code: if consent is
            # withdrawn later, it must be told.
            disclosed.append(offer.offering_tenant_id)
        impression_id = None if request.dry_run else new_id("imp")
        rank = len(result.offers) + 1
        result.offers.append(OfferShown(impression_id, offer, serving.partner_name, code, rank, entry.score))
        if impression_id is not None:
            shown.append(
                impressions.Shown(
                    impression_id,
                    offer.partnership_id,
                    offer.offering_tenant_id,
                    offer.offer_id,
                    offer.serving_version,
                    code,
                    rank,
                    entry.score,
                )
            )
    result.decisions["shown"] = len(result.offers)
    _record(session, host_tenant_id, request, customer.id, result, shown, now, disclosed)
    return result


def _code_for(
    session: Session, offer: LiveOfferRow, host: str, customer_id: str, dry_run: bool, key: bytes
) -> str | None:
    if offer.code_mode == "shared":
        return offer.shared_code
    if offer.code_mode != "pool" or dry_run:
        return None
    return codes.reserve_code(session, offer.offering_tenant_id, offer.offer_id, customer_ref(key, host, customer_id))


def _record(
    session: Session,
    host_tenant_id: str,
    request: ExchangeRequest,
    customer_id: str | None,
    result: ExchangeResult,
    shown: list[impressions.Shown],
    now: datetime,
    disclosed: Sequence[str] = (),
) -> None:
    if request.dry_run or result.answer_id is None:
        return
    statements = impressions.record_statements(
        host_tenant_id=host_tenant_id,
        answer_id=result.answer_id,
        customer_id=customer_id,
        placement=request.placement,
        shown=shown,
        decisions=result.decisions,
        now=now,
    )
    if disclosed and customer_id is not None:
        statements.append(disclosures.disclosures_write(session, host_tenant_id, customer_id, disclosed, now))
    # One round trip on PostgreSQL for the answer, both sides' impressions and the disclosures.
    execute_together(session, statements)
    impressions.count(session, host_tenant_id, shown, now)
