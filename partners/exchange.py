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
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import and_, select
from sqlmodel import Session

from partners import codes, customers, disclosures, impressions, interests, live_offers, ranking
from partners.consent_ledger import as_key_states, state_rows
from partners.consent_rules import Purpose, consenting
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


@dataclass(frozen=True)
class _Caps:
    per_7_days: int
    per_30_days: int
    reciprocity_target: float


def customer_ref(key: bytes, host_tenant_id: str, customer_id: str) -> str:
    """A pseudonym for the host's customer that the offering side may hold on a reserved code."""
    return hmac.new(key, f"{host_tenant_id}|{customer_id}".encode(), hashlib.sha256).hexdigest()[:32]


def _load_customer(
    session: Session, host_tenant_id: str, external_id: str, cart: tuple[str, ...], now: datetime
) -> _Customer | None:
    found = customers.find_customer(session, host_tenant_id, external_id)
    if found is None:
        return None
    profile = interests.load_profile(session, host_tenant_id, found.id)
    if profile is None:
        return _Customer(found.id, 0, None, None, ranking.Shopper({}, {}, cart))
    bands = {c: band for c in profile.interests if (band := profile.price_band(c)) is not None}
    value = interests.lifetime_value(profile, now)
    shopper = ranking.Shopper(profile.affinities(), bands, cart)
    return _Customer(found.id, profile.order_count, value.total_minor, value.currency, shopper)


def _caps(session: Session, host_tenant_id: str, partnership_ids: set[str]) -> dict[str, _Caps]:
    partnership, terms = Partnership.__table__, PartnershipTerms.__table__  # type: ignore[attr-defined]
    rows = session.execute(
        select(partnership.c.id, terms.c.cap_per_7_days, terms.c.cap_per_30_days, terms.c.reciprocity_target)
        .join(
            terms,
            and_(
                terms.c.tenant_id == partnership.c.tenant_id,
                terms.c.partnership_id == partnership.c.id,
                terms.c.version == partnership.c.agreed_version,
            ),
        )
        .where(partnership.c.tenant_id == host_tenant_id, partnership.c.id.in_(partnership_ids))
    ).all()
    return {str(r[0]): _Caps(int(r[1]), int(r[2]), float(r[3])) for r in rows}


def _partner_names(session: Session, tenant_ids: set[str]) -> dict[str, str]:
    table = RetailerProfile.__table__  # type: ignore[attr-defined]
    rows = session.execute(
        select(table.c.tenant_id, table.c.display_name).where(table.c.tenant_id.in_(tenant_ids))
    ).all()
    return {str(t): str(n) for t, n in rows}


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


def _candidates(
    session: Session,
    host_tenant_id: str,
    customer: _Customer,
    request: ExchangeRequest,
    now: datetime,
    result: ExchangeResult,
) -> tuple[dict[str, LiveOfferRow], list[ranking.Candidate], dict[str, _Caps]]:
    offers = live_offers.live_for_host(session, host_tenant_id, now)
    if not offers:
        return {}, [], {}
    states = as_key_states(state_rows(session, host_tenant_id, customer.id, {str(Purpose.partner_offers)}))
    caps = _caps(session, host_tenant_id, {o.partnership_id for o in offers})
    by_key: dict[str, LiveOfferRow] = {}
    candidates = []
    for offer in offers:
        # live_for_host joins active partnerships only, so the partner is active here.
        if not consenting(states, Purpose.partner_offers, offer.offering_tenant_id, partner_active=True):
            result.refuse("no_consent")
            continue
        refusal = _targeting_refusal(offer, customer, request.region, now)
        if refusal is not None or offer.partnership_id not in caps:
            result.refuse(refusal or "no_terms")
            continue
        key = f"{offer.partnership_id}/{offer.offer_id}"
        by_key[key] = offer
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
                reciprocity_target=caps[offer.partnership_id].reciprocity_target,
            )
        )
    return by_key, candidates, caps


def answer(
    session: Session, host_tenant_id: str, request: ExchangeRequest, *, now: datetime, code_key: bytes
) -> ExchangeResult:
    """The partner offers to show the customer now, best first; recorded unless a dry run."""
    result = ExchangeResult(answer_id=None if request.dry_run else new_id("exa"))
    customer = _load_customer(session, host_tenant_id, request.customer_external_id, request.cart_categories, now)
    if customer is None:
        # An unknown customer gets the same empty answer as one with nothing to show.
        result.refuse("unknown_customer")
        _record(session, host_tenant_id, request, None, result, [], now)
        return result
    by_key, candidates, caps = _candidates(session, host_tenant_id, customer, request, now, result)
    ranked = ranking.rank(load_taxonomy(), customer.shopper, candidates)
    result.decisions["not_relevant"] = result.decisions.get("not_relevant", 0) + len(candidates) - len(ranked)
    counts = impressions.recent_counts(session, host_tenant_id, customer.id, now) if ranked else None
    chosen: list[ranking.Ranked] = []
    partners_chosen: set[str] = set()
    for entry in ranked:
        offer = by_key[str(entry.candidate.key)]
        cap = caps[offer.partnership_id]
        assert counts is not None
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
    names = _partner_names(session, partners_chosen) if chosen else {}
    shown: list[impressions.Shown] = []
    for entry in chosen:
        offer = by_key[str(entry.candidate.key)]
        code = _code_for(session, offer, host_tenant_id, customer.id, request.dry_run, code_key)
        if offer.code_mode == "pool" and code is None and not request.dry_run:
            live_offers.refresh_offer(session, offer.offering_tenant_id, offer.offer_id)
            result.refuse("no_code")
            continue
        if offer.code_mode == "pool" and not request.dry_run:
            # The offering side now holds a pseudonym of this customer on the code: if consent is
            # withdrawn later, it must be told.
            disclosures.record_disclosure(session, host_tenant_id, customer.id, offer.offering_tenant_id, now)
        impression_id = None if request.dry_run else new_id("imp")
        rank = len(result.offers) + 1
        result.offers.append(
            OfferShown(impression_id, offer, names.get(offer.offering_tenant_id, ""), code, rank, entry.score)
        )
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
    _record(session, host_tenant_id, request, customer.id, result, shown, now)
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
) -> None:
    if request.dry_run or result.answer_id is None:
        return
    impressions.record(
        session,
        host_tenant_id=host_tenant_id,
        answer_id=result.answer_id,
        customer_id=customer_id,
        placement=request.placement,
        shown=shown,
        decisions=result.decisions,
        now=now,
    )
