"""Complementarity between two retailers, for partner discovery (pure functions, no I/O).

Each retailer lists taxonomy categories with their share of its sales. Shares are
normalised to sum to 1, then every pair of categories (one from each side) is weighed
by the product of its shares, so the pair weights sum to 1:

- a pair on the same shelf (equal ids, or one covering the other) is an overlap;
- a pair whose deepest common ancestor is third-level or deeper ("Dog Beds" for designer
  and orthopedic dog beds) sits on neighbouring shelves: substitutes, not complements;
- any other pair is related through its deepest common ancestor: worth 1/3 for sharing
  only a root ("Pet Supplies"), 1 for a second-level branch ("Dog Supplies", "Pet
  Health": the same customers, different shelves); unrelated pairs are worth 0.

    relatedness = Σ weight × ancestor worth        (related pairs)
    overlap     = Σ weight                         (same-shelf pairs)
    neighbours  = Σ weight                         (neighbouring-shelf pairs)
    price fit   = 1 same positioning, 0.5 adjacent, 0 budget against premium
    score       = clamp(relatedness × (0.85 + 0.15 × price fit) − 0.5 × overlap − 0.25 × neighbours, 0, 1)

Price fit scales relatedness rather than adding to it, so two unrelated shops never
score just for sharing a price band. Any overlap at all makes the pair competitors.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from partners.errors import Invalid
from partners.taxonomy import Taxonomy, load_taxonomy

PricePositioning = Literal["budget", "mid", "premium"]

_PRICE_ORDER: Mapping[str, int] = MappingProxyType({"budget": 0, "mid": 1, "premium": 2})
_BRANCH_DEPTH = 2  # sharing a second-level branch is the sweet spot of complementarity
_NEIGHBOUR_PENALTY = 0.25
_PRICE_WEIGHT = 0.15
_OVERLAP_PENALTY = 0.5
MAIN_SHARE = 0.25  # categories at least this share of sales are what a shop is "mainly" about
_SHARE_SLACK = 1e-6  # shares are floats entered by people; allow rounding when they sum to 1


@dataclass(frozen=True)
class RetailerFacts:
    """What discovery knows about one retailer; category ids must be in the taxonomy."""

    tenant_id: str
    display_name: str
    categories: Mapping[str, float] = field(hash=False)
    regions: frozenset[str]
    currencies: frozenset[str]
    price_positioning: PricePositioning
    blocked_categories: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for category_id, share in self.categories.items():
            if not 0.0 <= share <= 1.0:
                raise Invalid(f"Share of '{category_id}' must be between 0 and 1.", param="categories")
        if sum(self.categories.values()) > 1.0 + _SHARE_SLACK:
            raise Invalid("Category shares add up to more than 1.", param="categories")
        if self.price_positioning not in _PRICE_ORDER:
            raise Invalid(f"Unknown price positioning '{self.price_positioning}'.", param="price_positioning")
        # A read-only copy, so facts stay frozen even if the caller's dict changes later.
        object.__setattr__(self, "categories", MappingProxyType(dict(self.categories)))

    def shares(self) -> dict[str, float]:
        """Shares normalised to sum to 1 (equal shares when none were given)."""
        total = sum(self.categories.values())
        if total <= 0:
            return {category_id: 1 / len(self.categories) for category_id in self.categories}
        return {category_id: share / total for category_id, share in self.categories.items()}

    def main_categories(self) -> list[str]:
        """Categories making up at least MAIN_SHARE of sales, else the largest one."""
        shares = self.shares()
        main = [category_id for category_id, share in shares.items() if share >= MAIN_SHARE]
        if main or not shares:
            return sorted(main)
        return [max(sorted(shares), key=lambda category_id: shares[category_id])]


@dataclass(frozen=True)
class Complementarity:
    """How well two retailers fit; `reasons` are written for the first retailer to read."""

    score: float
    competitor: bool
    shared_ancestors: tuple[str, ...]  # names of the deepest shared categories, strongest first
    overlapping_leaves: tuple[str, ...]  # ids of the categories both sell, strongest first
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class RankedPartner:
    """One eligible candidate with its complementarity to the caller."""

    retailer: RetailerFacts
    complementarity: Complementarity


def complementarity(
    caller: RetailerFacts, candidate: RetailerFacts, *, taxonomy: Taxonomy | None = None
) -> Complementarity:
    """Score how well `candidate` complements `caller` (symmetric score, caller-facing reasons)."""
    tree = taxonomy if taxonomy is not None else load_taxonomy()
    caller_shares, candidate_shares = caller.shares(), candidate.shares()
    related: list[float] = []
    overlaps: list[float] = []
    neighbours: list[float] = []
    ancestor_weight: dict[str, float] = defaultdict(float)
    overlap_weight: dict[str, float] = defaultdict(float)
    for mine, my_share in caller_shares.items():
        for theirs, their_share in candidate_shares.items():
            weight = my_share * their_share
            common = tree.deepest_common_ancestor(mine, theirs)
            if common is None:
                continue
            if common.id in (mine, theirs):
                # Same shelf: report the more specific of the two as the contested category.
                contested = theirs if common.id == mine else mine
                overlap_weight[contested] += weight
                overlaps.append(weight)
                continue
            if common.depth > _BRANCH_DEPTH:
                neighbours.append(weight)
                continue
            related.append(weight * (1.0 if common.depth == _BRANCH_DEPTH else 1 / 3))
            ancestor_weight[common.id] += weight

    fit = _price_fit(caller.price_positioning, candidate.price_positioning)
    # fsum is exact, so the score does not depend on which side is the caller.
    relatedness, overlap, neighbouring = math.fsum(related), math.fsum(overlaps), math.fsum(neighbours)
    raw = (
        relatedness * (1 - _PRICE_WEIGHT + _PRICE_WEIGHT * fit)
        - _OVERLAP_PENALTY * overlap
        - _NEIGHBOUR_PENALTY * neighbouring
    )
    shared = _strongest_first(ancestor_weight)
    overlapping = _strongest_first(overlap_weight)
    return Complementarity(
        score=round(min(1.0, max(0.0, raw)), 3),
        competitor=bool(overlapping),
        shared_ancestors=tuple(tree.get(category_id).name for category_id in shared),
        overlapping_leaves=tuple(overlapping),
        reasons=tuple(_reasons(caller, candidate, tree, shared, overlapping)),
    )


def eligible(
    caller: RetailerFacts,
    candidate: RetailerFacts,
    include_competitors: bool,
    *,
    taxonomy: Taxonomy | None = None,
) -> tuple[bool, str]:
    """Whether `candidate` may be shown to `caller` in discovery, and why not if not."""
    tree = taxonomy if taxonomy is not None else load_taxonomy()
    if candidate.tenant_id == caller.tenant_id:
        return False, "is your own shop"
    if not caller.regions & candidate.regions:
        return False, "sells in none of your regions"
    if not caller.currencies & candidate.currencies:
        return False, "trades in none of your currencies"
    blocked = _blocked_main_category(candidate, caller.blocked_categories, tree)
    if blocked is not None:
        return False, f"sells mainly {tree.get(blocked).name}, which your brand-safety rules block"
    blocked = _blocked_main_category(caller, candidate.blocked_categories, tree)
    if blocked is not None:
        return False, f"blocks {tree.get(blocked).name}, which you mainly sell"
    if not include_competitors:
        overlapping = complementarity(caller, candidate, taxonomy=tree).overlapping_leaves
        if overlapping:
            names = ", ".join(tree.get(category_id).name for category_id in overlapping)
            return False, f"competitor: also sells {names}"
    return True, "eligible"


def rank(
    caller: RetailerFacts,
    candidates: Iterable[RetailerFacts],
    include_competitors: bool,
    *,
    taxonomy: Taxonomy | None = None,
) -> list[RankedPartner]:
    """Eligible candidates, best score first, ties by display name."""
    tree = taxonomy if taxonomy is not None else load_taxonomy()
    ranked = [
        RankedPartner(candidate, complementarity(caller, candidate, taxonomy=tree))
        for candidate in candidates
        if eligible(caller, candidate, include_competitors, taxonomy=tree)[0]
    ]
    ranked.sort(
        key=lambda entry: (
            -entry.complementarity.score,
            entry.retailer.display_name.casefold(),
            entry.retailer.tenant_id,  # a stable order even for two shops with one name
        )
    )
    return ranked


def _price_fit(first: PricePositioning, second: PricePositioning) -> float:
    """1 for the same positioning, 0.5 for neighbours, 0 for budget against premium."""
    distance = abs(_PRICE_ORDER[first] - _PRICE_ORDER[second])
    return {0: 1.0, 1: 0.5}.get(distance, 0.0)


def _strongest_first(weights: Mapping[str, float]) -> list[str]:
    return sorted(weights, key=lambda key: (-weights[key], key))


def _blocked_main_category(seller: RetailerFacts, blocked: frozenset[str], tree: Taxonomy) -> str | None:
    """The first of the seller's main categories that falls under one of `blocked`.

    Minor categories are not checked here: offers in them are filtered one by one later."""
    for category_id in seller.main_categories():
        if any(tree.covers(rule, category_id) for rule in sorted(blocked)):
            return category_id
    return None


def _reasons(
    caller: RetailerFacts,
    candidate: RetailerFacts,
    tree: Taxonomy,
    shared: list[str],
    overlapping: list[str],
) -> list[str]:
    # "shares Pet Supplies" adds nothing next to "shares Pet Supplies > Dog Supplies".
    specific = [
        category_id
        for category_id in shared
        if not any(other != category_id and tree.covers(category_id, other) for other in shared)
    ]
    reasons = [f"shares {tree.label(category_id)}" for category_id in specific[:3]]
    if overlapping:
        reasons.extend(
            f"sells {tree.get(category_id).name}, which {caller.display_name} also sells"
            for category_id in overlapping[:3]
        )
    elif shared:
        reasons.append("no overlapping leaf categories")
    else:
        reasons.append("no categories in common")
    reasons.append(_price_reason(caller.price_positioning, candidate.price_positioning))
    return reasons


def _price_reason(first: PricePositioning, second: PricePositioning) -> str:
    if first == second:
        return f"both {first}"
    fit = _price_fit(first, second)
    kind = "adjacent" if fit > 0 else "distant"
    return f"{kind} price positioning ({first} and {second})"
