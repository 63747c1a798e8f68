"""The shipped taxonomy: its data is sound, and navigation and search behave."""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from partners.errors import Invalid, NotFound
from partners.taxonomy import Taxonomy, load_taxonomy


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


def _small() -> Taxonomy:
    return Taxonomy(
        "test-1",
        [
            {"id": "cat_a", "name": "Alpha", "parent": None},
            {"id": "cat_a_one", "name": "Alpha One", "parent": "cat_a"},
            {"id": "cat_a_one_x", "name": "Deep X", "parent": "cat_a_one"},
            {"id": "cat_a_two", "name": "Beta Alpha", "parent": "cat_a"},
            {"id": "cat_b", "name": "Bravo", "parent": None},
        ],
    )


def test_shipped_data_is_versioned_sized_and_well_formed(taxonomy: Taxonomy) -> None:
    raw = json.loads(resources.files("partners").joinpath("data").joinpath("taxonomy.json").read_text(encoding="utf-8"))
    assert re.fullmatch(r"\d{4}-\d{2}", raw["version"])
    assert taxonomy.version == raw["version"]
    assert 300 <= len(taxonomy) <= 450
    assert len(taxonomy) == len(raw["nodes"])
    assert all(category.id.startswith("cat_") for category in taxonomy)
    assert max(category.depth for category in taxonomy) == 4
    names = [category.name.casefold() for category in taxonomy]
    assert len(names) == len(set(names)), "names must be unambiguous in search and reasons"


def test_shipped_data_has_the_expected_branches(taxonomy: Taxonomy) -> None:
    roots = {category.name for category in taxonomy.roots()}
    assert {
        "Pet Supplies",
        "Home & Garden",
        "Apparel",
        "Beauty & Personal Care",
        "Electronics",
        "Food & Drink",
        "Sports & Outdoors",
        "Toys & Games",
        "Books & Media",
    } <= roots
    pet_health = {category.name for category in taxonomy.children("cat_pet_health")}
    assert {"Flea & Tick", "Pet Dental Care", "Pet Vitamins & Supplements", "Pet First Aid"} <= pet_health


def test_load_taxonomy_parses_once() -> None:
    assert load_taxonomy() is load_taxonomy()


def test_get_returns_the_category_and_refuses_unknown_ids(taxonomy: Taxonomy) -> None:
    beds = taxonomy.get("cat_dog_beds")
    assert (beds.name, beds.parent, beds.depth) == ("Dog Beds", "cat_dog_supplies", 3)
    with pytest.raises(NotFound) as caught:
        taxonomy.get("cat_unicorn_saddles", param="categories[2]")
    assert caught.value.param == "categories[2]"
    assert "cat_unicorn_saddles" in caught.value.detail
    assert taxonomy.exists("cat_dog_beds")
    assert not taxonomy.exists("cat_unicorn_saddles")


def test_children_of_none_are_the_roots(taxonomy: Taxonomy) -> None:
    assert taxonomy.children(None) == taxonomy.roots()
    assert all(root.parent is None and root.depth == 1 for root in taxonomy.roots())
    assert [child.id for child in taxonomy.children("cat_dog_beds")] == [
        "cat_orthopedic_dog_beds",
        "cat_designer_dog_beds",
        "cat_dog_blankets_mats",
    ]
    with pytest.raises(NotFound):
        taxonomy.children("cat_nope")


def test_ancestors_are_nearest_first_and_path_reads_from_the_root(taxonomy: Taxonomy) -> None:
    assert [a.id for a in taxonomy.ancestors("cat_dog_beds")] == ["cat_dog_supplies", "cat_pet_supplies"]
    assert taxonomy.ancestors("cat_pet_supplies") == ()
    assert taxonomy.path("cat_dog_beds") == ("Pet Supplies", "Dog Supplies", "Dog Beds")
    assert taxonomy.label("cat_flea_tick") == "Pet Supplies > Pet Health > Flea & Tick"


def test_leaves_descendants_and_cover() -> None:
    tree = _small()
    assert tree.is_leaf("cat_a_one_x")
    assert not tree.is_leaf("cat_a")
    assert [c.id for c in tree.descendants("cat_a")] == ["cat_a_one", "cat_a_one_x", "cat_a_two"]
    assert tree.descendants("cat_b") == ()
    assert tree.covers("cat_a", "cat_a_one_x")
    assert tree.covers("cat_a_one", "cat_a_one")
    assert not tree.covers("cat_a_one_x", "cat_a")
    assert not tree.covers("cat_b", "cat_a_two")
    with pytest.raises(NotFound) as caught:
        tree.covers("cat_zzz", "cat_a")
    assert caught.value.param == "ancestor_id"


def test_deepest_common_ancestor() -> None:
    tree = _small()
    assert tree.deepest_common_ancestor("cat_a_one_x", "cat_a_two") == tree.get("cat_a")
    assert tree.deepest_common_ancestor("cat_a_one_x", "cat_a_one") == tree.get("cat_a_one")
    assert tree.deepest_common_ancestor("cat_a_two", "cat_b") is None


def test_every_shipped_leaf_is_covered_by_its_root(taxonomy: Taxonomy) -> None:
    for category in taxonomy:
        root = taxonomy.lineage(category.id)[-1]
        assert taxonomy.covers(root, category.id)
        assert category in taxonomy.descendants(root) or category.id == root


def test_search_ranks_exact_then_prefix_then_word_then_substring() -> None:
    tree = _small()
    assert [c.name for c in tree.search("alpha")] == ["Alpha", "Alpha One", "Beta Alpha"]
    assert [c.name for c in tree.search("ALPHA O")] == ["Alpha One"]
    assert [c.name for c in tree.search("ravo")] == ["Bravo"]
    assert [c.name for c in tree.search("  alpha  ", limit=1)] == ["Alpha"]
    assert tree.search("   ") == []
    assert tree.search("zebra") == []
    with pytest.raises(Invalid) as caught:
        tree.search("alpha", limit=0)
    assert caught.value.param == "limit"


def test_search_puts_an_exact_match_first_even_when_it_is_deeper() -> None:
    tree = Taxonomy(
        "test-2",
        [
            {"id": "cat_bedding", "name": "Bedding", "parent": None},
            {"id": "cat_home", "name": "Home", "parent": None},
            {"id": "cat_furniture", "name": "Furniture", "parent": "cat_home"},
            {"id": "cat_bed", "name": "Bed", "parent": "cat_furniture"},
            {"id": "cat_sofa_bed", "name": "Sofa Bed", "parent": "cat_furniture"},
        ],
    )
    assert [c.id for c in tree.search("bed")] == ["cat_bed", "cat_bedding", "cat_sofa_bed"]


def test_search_finds_dog_beds_by_words_in_any_position(taxonomy: Taxonomy) -> None:
    found = [c.name for c in taxonomy.search("dog bed")]
    assert found[0] == "Dog Beds"
    assert {"Orthopedic Dog Beds", "Designer Dog Beds"} <= set(found)
    assert "Dog Beds" in [c.name for c in taxonomy.search("beds dog")]
    assert taxonomy.search("flea")[0].id == "cat_flea_tick"


def test_validate_ids_names_the_first_unknown_id(taxonomy: Taxonomy) -> None:
    taxonomy.validate_ids(["cat_dog_beds", "cat_flea_tick"])
    with pytest.raises(Invalid) as caught:
        taxonomy.validate_ids(["cat_dog_beds", "cat_first_bad", "cat_second_bad"], param="blocked_categories")
    assert "cat_first_bad" in caught.value.detail
    assert "cat_second_bad" not in caught.value.detail
    assert caught.value.param == "blocked_categories"


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ([{"id": "cat_a", "name": "A", "parent": "cat_b"}, {"id": "cat_b", "name": "B", "parent": None}], "parent"),
        ([{"id": "cat_a", "name": "A", "parent": None}, {"id": "cat_a", "name": "A2", "parent": None}], "duplicate"),
        ([{"id": "Dog Beds", "name": "A", "parent": None}], "bad category id"),
        ([{"id": "cat_a", "name": " ", "parent": None}], "no name"),
    ],
)
def test_bad_data_is_refused_when_loading(nodes: list[dict[str, str | None]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Taxonomy("v", nodes)


def test_taxonomy_cannot_be_changed(taxonomy: Taxonomy) -> None:
    with pytest.raises(AttributeError):
        taxonomy._version = "hacked"
    assert taxonomy.version != "hacked"
