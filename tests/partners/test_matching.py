"""Complementarity, eligibility and ranking of discovery candidates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partners.errors import Invalid
from partners.matching import RetailerFacts, complementarity, eligible, rank
from partners.taxonomy import load_taxonomy


def shop(name: str, categories: Mapping[str, float], **overrides: Any) -> RetailerFacts:
    facts: dict[str, Any] = {
        "tenant_id": "ten_" + name.lower().replace(" ", "_"),
        "display_name": name,
        "categories": categories,
        "regions": frozenset({"GB", "IE"}),
        "currencies": frozenset({"GBP", "EUR"}),
        "price_positioning": "premium",
        "blocked_categories": frozenset(),
    }
    facts.update(overrides)
    return RetailerFacts(**facts)


BED_SHOP = shop("Cosy Beds", {"cat_designer_dog_beds": 0.6, "cat_cat_beds": 0.3, "cat_dog_blankets_mats": 0.1})
PET_CARE = shop(
    "Pawsome Care",
    {
        "cat_flea_tick": 0.4,
        "cat_pet_dental_care": 0.2,
        "cat_pet_vitamins_supplements": 0.2,
        "cat_pet_shampoos_conditioners": 0.2,
    },
)
OTHER_BED_SHOP = shop("Snooze Hound", {"cat_designer_dog_beds": 0.7, "cat_dog_crates_kennels": 0.3})


def test_pet_care_outranks_a_bed_shop_and_the_rival_is_left_out() -> None:
    ranked = rank(BED_SHOP, [OTHER_BED_SHOP, PET_CARE], include_competitors=False)
    assert [entry.retailer.display_name for entry in ranked] == ["Pawsome Care"]
    top = ranked[0].complementarity
    assert not top.competitor
    assert top.score > 0
    assert "shares Pet Supplies" in top.reasons
    assert "no overlapping leaf categories" in top.reasons
    assert "both premium" in top.reasons


def test_rival_bed_shop_is_flagged_and_explained() -> None:
    result = complementarity(BED_SHOP, OTHER_BED_SHOP)
    assert result.competitor
    assert result.overlapping_leaves == ("cat_designer_dog_beds",)
    assert "sells Designer Dog Beds, which Cosy Beds also sells" in result.reasons
    allowed, reason = eligible(BED_SHOP, OTHER_BED_SHOP, include_competitors=False)
    assert not allowed
    assert reason == "competitor: also sells Designer Dog Beds"


def test_competitors_appear_when_opted_in_but_below_the_complement() -> None:
    ranked = rank(BED_SHOP, [OTHER_BED_SHOP, PET_CARE], include_competitors=True)
    assert [entry.retailer.display_name for entry in ranked] == ["Pawsome Care", "Snooze Hound"]
    assert ranked[1].complementarity.competitor
    # The worked example in docs/partnerships.md.
    assert [entry.complementarity.score for entry in ranked] == [0.333, 0.083]


def test_a_broad_category_overlaps_the_leaves_under_it() -> None:
    general = shop("All Things Pet", {"cat_dog_supplies": 1.0})
    result = complementarity(BED_SHOP, general)
    assert result.competitor
    assert set(result.overlapping_leaves) == {"cat_designer_dog_beds", "cat_dog_blankets_mats"}


def test_a_deeper_shared_ancestor_scores_higher_than_a_shared_root() -> None:
    dog_toys = shop("Wag Toys", {"cat_dog_toys": 1.0})
    flea_only = shop("Flea Free", {"cat_flea_tick": 1.0})
    dental_only = shop("Bright Bites", {"cat_pet_dental_care": 1.0})
    # Flea and dental share Pet Health (depth 2); dog beds and flea share only Pet Supplies.
    assert complementarity(flea_only, dental_only).score > complementarity(BED_SHOP, flea_only).score
    assert complementarity(BED_SHOP, dog_toys).shared_ancestors[0] == "Dog Supplies"
    assert "shares Pet Supplies > Dog Supplies" in complementarity(BED_SHOP, dog_toys).reasons
    assert "shares Pet Supplies" not in complementarity(BED_SHOP, dog_toys).reasons


def test_sales_shares_weigh_the_score() -> None:
    mostly_pets = shop("Mostly Pets", {"cat_flea_tick": 0.9, "cat_televisions": 0.1})
    mostly_tvs = shop("Mostly TVs", {"cat_flea_tick": 0.1, "cat_televisions": 0.9})
    assert complementarity(BED_SHOP, mostly_pets).score > complementarity(BED_SHOP, mostly_tvs).score


def test_unrelated_shops_score_zero_whatever_their_price_band() -> None:
    tvs = shop("TV World", {"cat_televisions": 1.0})
    result = complementarity(BED_SHOP, tvs)
    assert result.score == 0.0
    assert not result.competitor
    assert result.shared_ancestors == ()
    assert "no categories in common" in result.reasons


@pytest.mark.parametrize(
    ("positioning", "reason"),
    [
        ("premium", "both premium"),
        ("mid", "adjacent price positioning (premium and mid)"),
        ("budget", "distant price positioning (premium and budget)"),
    ],
)
def test_price_positioning_gives_a_small_bonus(positioning: str, reason: str) -> None:
    care = shop("Pawsome Care", PET_CARE.categories, price_positioning=positioning)
    result = complementarity(BED_SHOP, care)
    assert reason in result.reasons
    same = complementarity(BED_SHOP, PET_CARE).score
    assert same - 0.06 < result.score <= same


def test_price_bonus_orders_same_adjacent_distant() -> None:
    scores = [
        complementarity(BED_SHOP, shop("P", PET_CARE.categories, price_positioning=p)).score
        for p in ("premium", "mid", "budget")
    ]
    assert scores[0] > scores[1] > scores[2] > 0


def test_region_currency_and_self_filters() -> None:
    abroad = shop("Pawsome US", PET_CARE.categories, regions=frozenset({"US"}))
    dollars = shop("Pawsome Dollars", PET_CARE.categories, currencies=frozenset({"USD"}))
    overlap_one = shop("Pawsome IE", PET_CARE.categories, regions=frozenset({"IE", "FR"}))
    assert eligible(BED_SHOP, abroad, include_competitors=True) == (False, "sells in none of your regions")
    assert eligible(BED_SHOP, dollars, include_competitors=True) == (False, "trades in none of your currencies")
    assert eligible(BED_SHOP, overlap_one, include_competitors=False) == (True, "eligible")
    assert eligible(BED_SHOP, BED_SHOP, include_competitors=True) == (False, "is your own shop")
    assert rank(BED_SHOP, [abroad, dollars, BED_SHOP], include_competitors=True) == []


def test_caller_brand_safety_blocks_candidates_mainly_in_blocked_categories() -> None:
    careful = shop("Careful Beds", BED_SHOP.categories, blocked_categories=frozenset({"cat_pet_health"}))
    allowed, reason = eligible(careful, PET_CARE, include_competitors=False)
    assert not allowed
    assert reason == "sells mainly Flea & Tick, which your brand-safety rules block"


def test_candidate_brand_safety_blocks_callers_it_will_not_promote() -> None:
    fussy = shop("Fussy Care", PET_CARE.categories, blocked_categories=frozenset({"cat_dog_beds"}))
    allowed, reason = eligible(BED_SHOP, fussy, include_competitors=False)
    assert not allowed
    assert reason == "blocks Designer Dog Beds, which you mainly sell"


def test_brand_safety_ignores_minor_categories() -> None:
    # 10% of sales in a blocked category is left to per-offer filtering, not discovery.
    careful = shop("Careful Beds", BED_SHOP.categories, blocked_categories=frozenset({"cat_wine"}))
    some_wine = shop("Treats & Tipples", {"cat_dog_treats_chews": 0.9, "cat_wine": 0.1})
    assert eligible(careful, some_wine, include_competitors=False) == (True, "eligible")


def test_ties_are_broken_by_name() -> None:
    twins = [shop(name, PET_CARE.categories) for name in ("zeta Care", "Alpha Care", "beta Care")]
    ranked = rank(BED_SHOP, twins, include_competitors=False)
    assert [entry.retailer.display_name for entry in ranked] == ["Alpha Care", "beta Care", "zeta Care"]


def test_facts_refuse_bad_shares_and_positioning() -> None:
    with pytest.raises(Invalid) as caught:
        shop("Bad", {"cat_dog_beds": 1.5})
    assert caught.value.param == "categories"
    with pytest.raises(Invalid):
        shop("Bad", {"cat_dog_beds": 0.7, "cat_cat_beds": 0.7})
    with pytest.raises(Invalid) as caught:
        shop("Bad", {"cat_dog_beds": 1.0}, price_positioning="luxury")
    assert caught.value.param == "price_positioning"


def test_facts_are_not_changed_through_the_callers_dict() -> None:
    categories = {"cat_dog_beds": 1.0}
    facts = shop("Mutable", categories)
    categories["cat_cat_beds"] = 0.5
    assert dict(facts.categories) == {"cat_dog_beds": 1.0}


def test_shops_without_shares_count_categories_equally() -> None:
    unweighted = shop("Unweighted", {"cat_flea_tick": 0.0, "cat_televisions": 0.0})
    assert unweighted.shares() == {"cat_flea_tick": 0.5, "cat_televisions": 0.5}
    empty = shop("Empty", {})
    assert complementarity(BED_SHOP, empty).score == 0.0


_LEAVES = sorted(category.id for category in load_taxonomy() if load_taxonomy().is_leaf(category.id))
_profiles = st.dictionaries(st.sampled_from(_LEAVES), st.floats(0.01, 1.0), min_size=1, max_size=5).map(
    lambda raw: {key: value / sum(raw.values()) * 0.999 for key, value in raw.items()}
)


@given(_profiles, _profiles, st.sampled_from(["budget", "mid", "premium"]))
def test_score_is_bounded_and_symmetric(first: dict[str, float], second: dict[str, float], price: str) -> None:
    a = shop("A", first)
    b = shop("B", second, price_positioning=price)
    forward, backward = complementarity(a, b), complementarity(b, a)
    assert 0.0 <= forward.score <= 1.0
    assert forward.score == backward.score
    assert forward.competitor == backward.competitor
    assert forward.competitor == bool(set(first) & set(second))


@pytest.mark.parametrize(
    ("first", "second", "price", "expected"),
    [
        # Only the root is shared: relatedness 1/3, same price band.
        ({"cat_designer_dog_beds": 1.0}, {"cat_flea_tick": 1.0}, "premium", 0.333),
        # Pet Health (depth 2) shared, adjacent price band: 1 × (0.85 + 0.15 × 0.5).
        ({"cat_flea_tick": 1.0}, {"cat_pet_dental_care": 1.0}, "mid", 0.925),
        # Half the pairs overlap, the other half share Dog Supplies: 0.5 × 1 − 0.5 × 0.5.
        ({"cat_designer_dog_beds": 1.0}, {"cat_designer_dog_beds": 0.5, "cat_dog_toys": 0.5}, "premium", 0.25),
        # Neighbouring shelves under Dog Beds are substitutes: 0.5 × 1 − 0.25 × 0.5.
        ({"cat_designer_dog_beds": 1.0}, {"cat_orthopedic_dog_beds": 0.5, "cat_dog_toys": 0.5}, "premium", 0.375),
        # Mostly overlap: the penalty floors the score at 0.
        ({"cat_designer_dog_beds": 1.0}, {"cat_designer_dog_beds": 0.9, "cat_dog_toys": 0.1}, "premium", 0.0),
    ],
)
def test_score_follows_the_documented_formula(
    first: dict[str, float], second: dict[str, float], price: str, expected: float
) -> None:
    assert complementarity(shop("A", first), shop("B", second, price_positioning=price)).score == expected
