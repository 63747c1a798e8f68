"""The overlap estimate's arithmetic: per-partnership hashes, noise, rounding, suppression, and the attack."""

from __future__ import annotations

import math
import random
import statistics

from partners.identity import keyed_email_hash, partnership_hash
from partners.overlap import (
    COUNT_EPSILON,
    MAX_RELEASES,
    MINIMUM,
    RELEASE_EPSILON,
    ROUNDING,
    TOTAL_EPSILON,
    OverlapEstimate,
    Release,
    release,
    shown_to,
    true_overlap,
)

KEY = b"k" * 32


def _hashes(start: int, count: int, domain: str = "example.com") -> list[str]:
    return [keyed_email_hash(KEY, f"person{i}@{domain}") for i in range(start, start + count)]


def _shown(overlap: int, rng: random.Random, size: int = 1000) -> OverlapEstimate:
    measured = release(size, size, overlap, rng)
    return shown_to(measured, mine=measured.first_size, theirs=measured.second_size)


def test_the_overlap_is_counted_on_per_partnership_hashes() -> None:
    mine, theirs = _hashes(0, 300), _hashes(200, 400)
    assert true_overlap(KEY, "ptn_a", mine, theirs) == (300, 400, 100)
    assert partnership_hash(KEY, "ptn_a", mine[0]) != partnership_hash(KEY, "ptn_b", mine[0])


def test_the_budget_allows_a_fixed_number_of_releases() -> None:
    assert MAX_RELEASES == 5
    assert MAX_RELEASES * RELEASE_EPSILON <= TOTAL_EPSILON


def test_far_below_the_minimum_a_number_is_practically_never_shown() -> None:
    rng = random.Random(1)
    for overlap in (0, 10):
        results = [_shown(overlap, rng) for _ in range(2000)]
        assert sum(not r.suppressed for r in results) / len(results) < 0.03
        hidden = next(r for r in results if r.suppressed)
        assert hidden.overlap is None and hidden.share_of_mine is None and hidden.share_of_theirs is None
        assert hidden.display == f"fewer than {MINIMUM}"


def test_suppression_is_decided_on_the_noised_value_so_the_threshold_reveals_nothing() -> None:
    # Deciding on the true count would make a true 49 always hidden and a true 50 mostly shown.
    rng = random.Random(2)
    shown_49 = sum(not _shown(49, rng).suppressed for _ in range(4000)) / 4000
    shown_50 = sum(not _shown(50, rng).suppressed for _ in range(4000)) / 4000
    assert 0.5 < shown_49 < 0.85 and 0.5 < shown_50 < 0.85
    assert abs(shown_50 - shown_49) < 0.06, (shown_49, shown_50)


def test_shown_counts_are_rounded_centred_and_nine_in_ten_within_30() -> None:
    rng = random.Random(3)
    results = [_shown(400, rng, 2000) for _ in range(2000)]
    values = [r.overlap for r in results if r.overlap is not None]
    assert len(values) == len(results)
    assert all(v % ROUNDING == 0 for v in values)
    assert sum(abs(v - 400) <= 30 for v in values) / len(values) >= 0.9
    assert abs(statistics.fmean(v - 400 for v in values)) < 1.5, "the noise is centred"
    assert len(set(values)) > 5, "the noise is drawn afresh"


def test_shares_and_caps_use_the_noised_sizes_only() -> None:
    measured = Release(overlap=500, first_size=407, second_size=1000)
    shown = shown_to(measured, mine=407, theirs=1000)
    assert shown.overlap == 400, "capped by the smaller noised side, rounded down"
    assert (shown.share_of_mine, shown.share_of_theirs) == (0.98, 0.4)
    mirrored = shown_to(measured, mine=1000, theirs=407)
    assert (mirrored.share_of_mine, mirrored.share_of_theirs) == (0.4, 0.98)


# --- the differencing attack ------------------------------------------------------------------
# An attacker partnered with a shop wants to know whether one person (the target) is among the
# shop's consenting customers: it puts the target's email on its own side for some measurements
# and not for others, and compares. With fresh noise and no budget, averaging wins; with the
# pair's budget it gets MAX_RELEASES measurements in all, and DP bounds any test it can run.


def _attacker_accuracy(measurements: int, trials: int, seed: int) -> float:
    """Accuracy of the likelihood-ratio test (the best one) on alternating measurements of the noised count."""
    rng = random.Random(seed)
    scale = 1 / COUNT_EPSILON
    correct = 0
    for trial in range(trials):
        member = trial % 2 == 0
        base = 120
        log_ratio = 0.0  # log P(answers | member) - log P(answers | not)
        for i in range(measurements):
            probing = i % 2 == 1
            truth = base + (1 if probing and member else 0)
            noised = truth + (-scale * math.copysign(1.0, u := rng.random() - 0.5) * math.log(1 - 2 * abs(u)))
            if probing:
                # Laplace likelihoods of the answer under "count is base+1" vs "count is base".
                log_ratio += (abs(noised - base) - abs(noised - base - 1)) / scale
        correct += (log_ratio > 0) == member
    return correct / trials


def test_without_a_budget_the_differencing_attack_wins() -> None:
    # Two years of daily fresh measurements, half of them with the target: the old way.
    assert _attacker_accuracy(measurements=730, trials=400, seed=4) >= 0.75


def test_within_the_budget_the_attack_stays_under_the_privacy_bound() -> None:
    bound = math.exp(TOTAL_EPSILON) / (1 + math.exp(TOTAL_EPSILON))  # ≈ 0.73 for ε = 1
    accuracy = _attacker_accuracy(measurements=MAX_RELEASES, trials=4000, seed=5)
    assert accuracy <= bound, (accuracy, bound)
    assert accuracy < 0.6, accuracy
