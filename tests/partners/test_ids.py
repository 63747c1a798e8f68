import time

from partners.ids import is_id, new_id, new_ids


def test_ids_carry_their_prefix_and_are_well_formed() -> None:
    value = new_id("off")
    assert value.startswith("off_")
    assert is_id(value, "off")
    assert not is_id(value, "ptn")
    assert not is_id("off_notanid", "off")


def test_ids_sort_by_creation_time() -> None:
    first = new_id("x")
    time.sleep(0.002)
    assert new_id("x") > first


def test_ids_do_not_collide() -> None:
    assert len({new_id("x") for _ in range(10_000)}) == 10_000


def test_ids_made_in_bulk_are_well_formed_unique_and_time_ordered() -> None:
    before = new_id("pur")
    time.sleep(0.002)
    made = new_ids("pur", 5_000)
    assert all(is_id(value, "pur") for value in made)
    assert len(set(made)) == 5_000
    assert min(made) > before
    # The first 10 digits are the milliseconds, as new_id writes them.
    assert {value[4:14] for value in made} == {made[0][4:14]}
    assert new_ids("pur", 0) == []
