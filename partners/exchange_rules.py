"""The exchange's decisions, as pure functions: which served offers are eligible, and which to show.

Eligibility is a sequence of named rules (`ELIGIBILITY`), each asked of every offer the host
serves now, in order; the first that refuses names the reason counted in the answer. A new rule
is one function added to the sequence: the I/O paths (`exchange`, `exchange_async`) only load
what the rules read and record what they decided.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from partners import holdouts, impressions, ranking, retention_rules
from partners.exchange_model import ExchangeRequest, ExchangeResult, OfferShown
from partners.ids import new_id
from partners.live_offers import LiveOfferRow
from partners.taxonomy import load_taxonomy


@dataclass(frozen=True, slots=True)
class Caps:
    """The host's agreed terms on the partnership that ranking and the caps read."""

    per_7_days: int
    per_30_days: int
    reciprocity_target: float


@dataclass(frozen=True, slots=True)
class Counts:
    """Ranking's running counts for one served offer (`partners.counters`)."""

    impressions: int = 0  # the offer's impressions at every host
    redemptions: int = 0  # and its redemptions, net of reversals
    given: int = 0  # impressions the host gave of this partner's offers on the partnership
    received: int = 0  # impressions the partner gave of the host's offers on it


@dataclass(frozen=True, slots=True)
class Serving:
    """One offer the host serves now, with its terms, the partner's name, the customer's consent and
    the ranking counts (read with it: `offer`'s own counter fields are not used here)."""

    offer: LiveOfferRow
    caps: Caps | None
    partner_name: str
    consented: bool
    counts: Counts


@dataclass(frozen=True, slots=True)
class Customer:
    """What the rules and ranking know of the host's customer."""

    id: str
    orders: int
    lifetime_value: int | None
    currency: str | None
    shopper: ranking.Shopper
    retention: retention_rules.Shopper
    band: retention_rules.LtvBand | None


@dataclass(slots=True)
class Holdouts:
    """The host's running holdouts, and the groups this call found the customer in (to record)."""

    running: Mapping[tuple[str, str], holdouts.RunningHoldout]
    host_tenant_id: str
    key: bytes
    groups: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Asked:
    """One call's facts every rule may read (`held` collects the holdout groups the call met)."""

    customer: Customer
    request: ExchangeRequest
    now: datetime
    held: Holdouts


Rule = Callable[[Serving, Asked], str | None]


def consent(serving: Serving, _asked: Asked) -> str | None:
    # The serving query joins active partnerships only, so "all partners" consent covers the partner here.
    return None if serving.consented else "no_consent"


def sale_not_public(serving: Serving, asked: Asked) -> str | None:
    offer = serving.offer
    public = offer.public_sale_starts_at
    return "sale_public" if offer.kind == "early_access" and public is not None and asked.now >= public else None


def customer_type(serving: Serving, asked: Asked) -> str | None:
    wanted, orders = serving.offer.customer_type, asked.customer.orders
    refused = (wanted == "new" and orders > 1) or (wanted == "returning" and orders < 2)
    return "targeting_customer_type" if refused else None


def lifetime_value(serving: Serving, asked: Asked) -> str | None:
    minimum, customer = serving.offer.min_lifetime_value, asked.customer
    if minimum is None:
        return None
    if customer.lifetime_value is None or customer.currency != serving.offer.currency:
        return "targeting_lifetime_value"
    return "targeting_lifetime_value" if customer.lifetime_value < minimum else None


def region(serving: Serving, asked: Asked) -> str | None:
    regions = serving.offer.regions
    return "targeting_region" if regions and asked.request.region not in regions else None


def agreed_terms(serving: Serving, _asked: Asked) -> str | None:
    return "no_terms" if serving.caps is None else None


def retention(serving: Serving, asked: Asked) -> str | None:
    """The placement's kinds, risk-level and value-band targeting (`retention_rules`)."""
    offer, customer = serving.offer, asked.customer
    return (
        retention_rules.placement_kind_refusal(asked.request.placement, offer.kind)
        or retention_rules.risk_targeting_refusal(offer.risk_levels, customer.retention)
        or retention_rules.band_targeting_refusal(offer.lifetime_value_bands, customer.band)
    )


def holdout(serving: Serving, asked: Asked) -> str | None:
    """Refuse an otherwise eligible offer to a customer held out of it, noting their group either way.

    Last: only customers for whom the offer is otherwise eligible enter the holdout's groups."""
    held = asked.held
    running = holdouts.holdout_for(held.running, serving.offer.partnership_id, serving.offer.offer_id)
    if running is None:
        return None
    out = holdouts.is_held_out(held.key, held.host_tenant_id, running.id, asked.customer.id, running.share_bps)
    held.groups[running.id] = out
    return "holdout" if out else None


# In order: the first rule that refuses an offer names the reason it is counted under.
ELIGIBILITY: tuple[tuple[str, Rule], ...] = (
    ("consent", consent),
    ("sale_not_public", sale_not_public),
    ("customer_type", customer_type),
    ("lifetime_value", lifetime_value),
    ("region", region),
    ("agreed_terms", agreed_terms),
    ("retention", retention),
    ("holdout", holdout),
)


def placement_refusal(asked: Asked) -> str | None:
    """Whether the customer belongs at the placement at all (win-back and appreciation are for some
    customers only): asked once per call, before the rules; anyone else gets an empty answer."""
    customer = asked.customer
    return retention_rules.placement_refusal(asked.request.placement, customer.retention, customer.band)


def refusal(serving: Serving, asked: Asked, rules: Sequence[tuple[str, Rule]] = ELIGIBILITY) -> str | None:
    """The reason the first refusing rule gives, or None when the offer is eligible."""
    for _name, rule in rules:
        reason = rule(serving, asked)
        if reason is not None:
            return reason
    return None


def candidates(
    servings: Sequence[Serving], asked: Asked, result: ExchangeResult
) -> tuple[dict[str, Serving], list[ranking.Candidate]]:
    """The eligible offers as ranking candidates (by key); refusals counted on `result`."""
    by_key: dict[str, Serving] = {}
    found = []
    for serving in servings:
        reason = refusal(serving, asked)
        if reason is not None:
            result.refuse(reason)
            continue
        offer, caps = serving.offer, serving.caps
        assert caps is not None  # `agreed_terms` refused offers without
        key = f"{offer.partnership_id}/{offer.offer_id}"
        by_key[key] = serving
        found.append(
            ranking.Candidate(
                key=key,
                partner=offer.offering_tenant_id,
                categories=tuple(offer.categories),
                price_min=offer.price_min,
                price_max=offer.price_max,
                impressions=serving.counts.impressions,
                redemptions=serving.counts.redemptions,
                given=serving.counts.given,
                received=serving.counts.received,
                reciprocity_target=caps.reciprocity_target,
            )
        )
    return by_key, found


def choose(
    servings: Sequence[Serving], asked: Asked, counts: impressions.RecentCounts, result: ExchangeResult
) -> list[tuple[Serving, float]]:
    """The offers to show, best first, with their scores: eligible, relevant, within the host's
    frequency caps, one per partner unless asked otherwise, at most `limit`."""
    request = asked.request
    by_key, found = candidates(servings, asked, result)
    ranked = ranking.rank(load_taxonomy(), asked.customer.shopper, found)
    result.refuse("not_relevant", len(found) - len(ranked))
    chosen: list[tuple[Serving, float]] = []
    partners_chosen: set[str] = set()
    for entry in ranked:
        serving = by_key[str(entry.candidate.key)]
        cap = serving.caps
        assert cap is not None
        so_far = len(chosen)
        if counts.last_7_days + so_far >= cap.per_7_days or counts.last_30_days + so_far >= cap.per_30_days:
            result.refuse("frequency_cap")
            continue
        if request.one_per_partner and entry.candidate.partner in partners_chosen:
            result.refuse("one_per_partner")
            continue
        if len(chosen) == request.limit:
            result.refuse("limit")
            continue
        chosen.append((serving, entry.score))
        partners_chosen.add(entry.candidate.partner)
    return chosen


def needs_pool_code(serving: Serving, request: ExchangeRequest) -> bool:
    """Whether showing this offer reserves a single-use code for the customer."""
    return serving.offer.code_mode == "pool" and not request.dry_run


@dataclass
class Outcome:
    """What the I/O path records after the codes are known."""

    shown: list[impressions.Shown]
    disclosed: list[str]  # offering tenants now holding a pseudonym of the customer on a code
    dry_pools: list[LiveOfferRow]  # pool offers whose pool ran dry: their live rows need a refresh


def show(
    chosen: Sequence[tuple[Serving, float]],
    codes: Sequence[str | None],
    request: ExchangeRequest,
    result: ExchangeResult,
) -> Outcome:
    """Put the chosen offers with their codes on `result` (ranks, impression ids) and say what to record.

    `codes[i]` is the code of `chosen[i]`: the shared code, the single-use code reserved for the
    customer, or None (no code, a dry run, or a pool that ran dry)."""
    outcome = Outcome([], [], [])
    for (serving, score), code in zip(chosen, codes, strict=True):
        offer = serving.offer
        if needs_pool_code(serving, request):
            if code is None:
                outcome.dry_pools.append(offer)
                result.refuse("no_code")
                continue
            # The offering side now holds a pseudonym of this customer on the code: if consent is
            # withdrawn later, it must be told.
            outcome.disclosed.append(offer.offering_tenant_id)
        impression_id = None if request.dry_run else new_id("imp")
        rank = len(result.offers) + 1
        result.offers.append(OfferShown(impression_id, offer, serving.partner_name, code, rank, score))
        if impression_id is not None:
            outcome.shown.append(
                impressions.Shown(
                    impression_id,
                    offer.partnership_id,
                    offer.offering_tenant_id,
                    offer.offer_id,
                    offer.serving_version,
                    code,
                    rank,
                    score,
                )
            )
    result.decisions["shown"] = len(result.offers)
    return outcome
