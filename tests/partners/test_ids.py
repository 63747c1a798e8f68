import time

from partners.ids import is_id, new_id


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
