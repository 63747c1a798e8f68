from partners.ranking import Candidate, Shopper, conversion, interest_fit, pick, price_fit, rank, reciprocity
from partners.taxonomy import load_taxonomy

TREE = load_taxonomy()
DOG_OWNER = Shopper(
    affinities={"cat_designer_dog_beds": 0.7, "cat_cat_beds": 0.3},
    price_bands={"cat_designer_dog_beds": (8000, 15000)},
)


def offer(key: str, categories: tuple[str, ...], partner: str = "ten_care", **extra: object) -> Candidate:
    values: dict = {"price_min": None, "price_max": None}  # type: ignore[type-arg]
    values.update(extra)
    return Candidate(key=key, partner=partner, categories=categories, **values)


def test_interest_counts_in_full_below_and_half_in_the_same_branch() -> None:
    assert interest_fit(TREE, DOG_OWNER, ("cat_dog_beds",)) == 0.7
    assert interest_fit(TREE, DOG_OWNER, ("cat_dog_toys",)) == 0.35  # Dog Supplies shared: half
    assert interest_fit(TREE, DOG_OWNER, ("cat_televisions",)) == 0.0
    assert interest_fit(TREE, DOG_OWNER, ("cat_pet_supplies",)) == 1.0


def test_cart_categories_count_like_a_strong_interest() -> None:
    new_cat_owner = Shopper(affinities={}, price_bands={}, cart_categories=("cat_cat_litter",))
    assert interest_fit(TREE, new_cat_owner, ("cat_cat_litter",)) == 1.0
    assert interest_fit(TREE, Shopper({}, {}), ("cat_cat_litter",)) == 0.0


def test_price_fit_follows_the_customers_band() -> None:
    inside = offer("a", ("cat_dog_beds",), price_min=9000, price_max=12000)
    below = offer("b", ("cat_dog_beds",), price_min=500, price_max=2000)
    assert price_fit(TREE, DOG_OWNER, inside) > 0.4
    assert price_fit(TREE, DOG_OWNER, below) == 0.0
    assert price_fit(TREE, DOG_OWNER, offer("c", ("cat_dog_beds",))) == 1.0
    assert price_fit(TREE, DOG_OWNER, offer("d", ("cat_flea_tick",), price_min=100, price_max=200)) == 1.0


def test_conversion_is_smoothed_and_reciprocity_bounded() -> None:
    assert conversion(offer("a", ("x",))) == 0.02
    assert conversion(offer("a", ("x",), impressions=1000, redemptions=100)) > 0.09
    assert reciprocity(offer("a", ("x",), given=0, received=100)) == 1.5
    assert reciprocity(offer("a", ("x",), given=1000, received=0)) == 2 / 3
    assert reciprocity(offer("a", ("x",), given=50, received=50)) == 1.0


def test_rank_orders_by_relevance_and_drops_the_irrelevant() -> None:
    beds = offer("beds", ("cat_dog_beds",))
    toys = offer("toys", ("cat_dog_toys",))
    tv = offer("tv", ("cat_televisions",))
    assert [r.candidate.key for r in rank(TREE, DOG_OWNER, [toys, tv, beds])] == ["beds", "toys"]


def test_a_well_converting_offer_can_overtake() -> None:
    beds = offer("beds", ("cat_dog_beds",))
    toys = offer("toys", ("cat_dog_toys",), impressions=2000, redemptions=600)
    assert rank(TREE, DOG_OWNER, [beds, toys])[0].candidate.key == "toys"


def test_pick_keeps_one_offer_per_partner_unless_asked() -> None:
    ranked = rank(
        TREE,
        DOG_OWNER,
        [
            offer("a1", ("cat_dog_beds",), partner="A"),
            offer("a2", ("cat_dog_beds",), partner="A"),
            offer("b1", ("cat_dog_toys",), partner="B"),
        ],
    )
    assert [r.candidate.key for r in pick(ranked, 3)] == ["a1", "b1"]
    assert [r.candidate.key for r in pick(ranked, 3, one_per_partner=False)] == ["a1", "a2", "b1"]
    assert len(pick(ranked, 1)) == 1
