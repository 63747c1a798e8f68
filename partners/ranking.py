"""How the exchange orders eligible offers for one customer (pure functions).

    score = interest × (0.7 + 0.3 × price fit) × (1 + 5 × conversion) × reciprocity

- interest: the customer's recency-weighted affinity to the offer's categories. A category
  the customer buys in, or one below it, counts in full; one in the same second-level
  branch (dog beds → dog toys under Dog Supplies) counts half; cart categories of the
  current order count like a strong recent interest. Offers targeting interests the
  customer has none of score 0 and are not shown.
- price fit: how much the offer's price band overlaps the customer's typical band in
  those categories (1 when either is unknown).
- conversion: the offer's smoothed redemption rate (a 2 % prior worth 50 impressions).
- reciprocity: boosts partners the host has shown less than the terms' target ratio of
  what they showed of the host's offers, and damps those it has shown more (0.67–1.5).
Diversity: at most one offer per partner unless asked otherwise.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

from partners.taxonomy import Taxonomy

CART_WEIGHT = 0.5
PRIOR_RATE = 0.02
PRIOR_IMPRESSIONS = 50
_BRANCH_DEPTH = 2


@dataclass(frozen=True, slots=True)
class Shopper:
    """What ranking knows of the customer at the host."""

    affinities: Mapping[str, float]
    price_bands: Mapping[str, tuple[int, int]]
    cart_categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Candidate:
    key: Hashable
    partner: str
    categories: tuple[str, ...]
    price_min: int | None
    price_max: int | None
    impressions: int = 0
    redemptions: int = 0
    given: int = 0  # impressions the host showed of this partner's offers
    received: int = 0  # impressions the partner showed of the host's offers
    reciprocity_target: float = 1.0


@dataclass(frozen=True, slots=True)
class Ranked:
    candidate: Candidate
    score: float
    interest: float


# A pure function of an immutable tree and two ids, asked ~100 times per exchange answer.
@functools.lru_cache(maxsize=1 << 16)
def _closeness(tree: Taxonomy, interest: str, offered: str) -> float:
    if tree.covers(offered, interest) or tree.covers(interest, offered):
        return 1.0
    common = tree.deepest_common_ancestor(interest, offered)
    return 0.5 if common is not None and common.depth >= _BRANCH_DEPTH else 0.0


def related_categories(tree: Taxonomy, categories: Sequence[str]) -> set[str]:
    """Every category a customer's interest in which gives an offer in `categories` a positive interest fit."""
    return {c.id for c in tree if any(_closeness(tree, c.id, offered) > 0 for offered in categories)}


def interest_fit(tree: Taxonomy, shopper: Shopper, categories: Sequence[str]) -> float:
    """0–1: how much of what the customer buys the offer's categories speak to."""
    weights = dict(shopper.affinities)
    for category in shopper.cart_categories:
        weights[category] = weights.get(category, 0.0) + CART_WEIGHT
    total = sum(weights.values())
    if total <= 0 or not categories:
        return 0.0
    fit = sum(w * max(_closeness(tree, c, o) for o in categories) for c, w in weights.items() if tree.exists(c))
    return min(1.0, fit / total)


def price_fit(tree: Taxonomy, shopper: Shopper, candidate: Candidate) -> float:
    """0–1 overlap of the offer's band with the customer's bands in matching categories."""
    if candidate.price_min is None and candidate.price_max is None:
        return 1.0
    low_offer = candidate.price_min or 0
    high_offer = candidate.price_max if candidate.price_max is not None else math.inf
    bands = [
        band
        for category, band in shopper.price_bands.items()
        if any(_closeness(tree, category, o) == 1.0 for o in candidate.categories)
    ]
    if not bands:
        return 1.0
    best = 0.0
    for low, high in bands:
        overlap = min(high, high_offer) - max(low, low_offer)
        if overlap >= 0:
            best = max(best, (overlap + 1) / (high - low + 1))
    return min(1.0, best)


def conversion(candidate: Candidate) -> float:
    """Smoothed redemption rate."""
    return (candidate.redemptions + PRIOR_RATE * PRIOR_IMPRESSIONS) / (candidate.impressions + PRIOR_IMPRESSIONS)


def reciprocity(candidate: Candidate) -> float:
    """> 1 when the host owes the partner impressions, < 1 when it is ahead."""
    owed = candidate.reciprocity_target * candidate.received + 1
    return min(1.5, max(2 / 3, math.sqrt(owed / (candidate.given + 1))))


def rank(tree: Taxonomy, shopper: Shopper, candidates: Sequence[Candidate]) -> list[Ranked]:
    """Candidates with a positive score, best first (ties by key for a stable answer)."""
    ranked = []
    for candidate in candidates:
        interest = interest_fit(tree, shopper, candidate.categories)
        if interest <= 0:
            continue
        price = price_fit(tree, shopper, candidate)
        score = interest * (0.7 + 0.3 * price) * (1 + 5 * conversion(candidate)) * reciprocity(candidate)
        ranked.append(Ranked(candidate, round(score, 6), interest))
    ranked.sort(key=lambda r: (-r.score, str(r.candidate.key)))
    return ranked


def pick(ranked: Sequence[Ranked], limit: int, one_per_partner: bool = True) -> list[Ranked]:
    """The best `limit`, at most one per partner unless asked otherwise."""
    chosen: list[Ranked] = []
    partners: set[str] = set()
    for entry in ranked:
        if one_per_partner and entry.candidate.partner in partners:
            continue
        chosen.append(entry)
        partners.add(entry.candidate.partner)
        if len(chosen) == limit:
            break
    return chosen
