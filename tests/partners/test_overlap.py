import random

import pytest

from partners.identity import keyed_email_hash, partnership_hash
from partners.overlap import MINIMUM, estimate, publishable, true_overlap

KEY = b"k" * 32


def _hashes(start: int, count: int) -> list[str]:
    return [keyed_email_hash(KEY, f"person{i}@example.com") for i in range(start, start + count)]


def test_the_overlap_is_counted_on_per_partnership_hashes() -> None:
    mine, theirs = _hashes(0, 300), _hashes(200, 400)
    assert true_overlap(KEY, "ptn_a", mine, theirs) == (300, 400, 100)
    assert partnership_hash(KEY, "ptn_a", mine[0]) != partnership_hash(KEY, "ptn_b", mine[0])


@pytest.mark.parametrize("overlap", [0, 1, 30, MINIMUM - 1])
def test_below_the_minimum_nothing_is_shown(overlap: int) -> None:
    for seed in range(50):
        shown = publishable(1000, 1000, overlap, random.Random(seed))
        assert shown.suppressed
        assert shown.overlap is None and shown.share_of_mine is None
        assert shown.display == f"fewer than {MINIMUM}"


def test_shown_counts_are_rounded_noised_and_close() -> None:
    results = [publishable(1000, 2000, 400, random.Random(seed)) for seed in range(200)]
    values = [r.overlap for r in results]
    assert all(v is not None and v % 10 == 0 for v in values)
    assert all(abs(v - 400) <= 60 for v in values if v is not None)
    assert len(set(values)) > 1, "the noise does vary between computations"
    assert results[0].share_of_mine == round(values[0] / 1000, 2)  # type: ignore[operator]


def test_one_customer_more_or_less_cannot_be_told_apart() -> None:
    # The distribution of what is shown for n and n+1 is almost the same: an attacker who adds
    # a probe customer learns close to nothing from one daily sample.
    def distribution(overlap: int) -> dict[int | None, int]:
        counts: dict[int | None, int] = {}
        for seed in range(4000):
            value = publishable(5000, 5000, overlap, random.Random(seed)).overlap
            counts[value] = counts.get(value, 0) + 1
        return counts

    a, b = distribution(300), distribution(301)
    total_variation = sum(abs(a.get(k, 0) - b.get(k, 0)) for k in set(a) | set(b)) / 2 / 4000
    assert total_variation < 0.15


def test_estimate_end_to_end() -> None:
    shown = estimate(KEY, "ptn_x", _hashes(0, 500), _hashes(100, 500), random.Random(1))
    assert not shown.suppressed
    assert shown.overlap is not None and abs(shown.overlap - 400) <= 60
