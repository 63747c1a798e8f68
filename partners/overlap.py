"""Audience overlap between two partners, as a differentially private aggregate.

Inputs are the platform's keyed email hashes of the customers who consented to overlap
analysis on each side. They are re-keyed per partnership (so a hash means nothing
outside it) and intersected by the platform; neither side ever sees the other's hashes.

What protects one customer's membership (docs/partnerships.md, "Audience overlap"): each
release adds fresh Laplace noise to the shared count and to both side sizes, and a pair of
retailers gets at most `MAX_RELEASES` releases in its lifetime, one per `REFRESH` at most;
in between and afterwards the last release is replayed. Everything shown (rounding, the
suppression below `MINIMUM`, the shares) is computed from the noised values only, so the
whole lifetime of answers is `TOTAL_EPSILON`-differentially private for any one customer.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from partners.identity import partnership_hasher

MINIMUM = 50
ROUNDING = 10
# Privacy loss per release, for one person: the shared count moves by at most 1, and each side's
# size by at most 1 (a person may be a customer of both). Noise scales are 1/ε: 10 on the count,
# 20 on each size.
COUNT_EPSILON = 0.1
SIZE_EPSILON = 0.05
RELEASE_EPSILON = COUNT_EPSILON + 2 * SIZE_EPSILON
# The pair's lifetime budget: an attacker's confidence about one customer moves from 50 % to at
# most e/(1+e) ≈ 73 %, however many questions are asked.
TOTAL_EPSILON = 1.0
MAX_RELEASES = math.floor(TOTAL_EPSILON / RELEASE_EPSILON + 1e-9)
REFRESH = timedelta(days=30)


@dataclass(frozen=True)
class Release:
    """One noised measurement of a pair (`first`, `second`: the pair's tenants sorted)."""

    overlap: int  # noised, rounded; may be below MINIMUM (then nobody is shown a number)
    first_size: int  # noised
    second_size: int  # noised


@dataclass(frozen=True)
class OverlapEstimate:
    """What a partner is shown: counts only above the minimum, rounded and noised."""

    overlap: int | None  # None when suppressed
    share_of_mine: float | None  # overlap / my consenting customers
    share_of_theirs: float | None
    suppressed: bool
    minimum: int = MINIMUM

    @property
    def display(self) -> str:
        """How to say it to a person."""
        return f"fewer than {self.minimum}" if self.suppressed else f"about {self.overlap}"


def true_overlap(key: bytes, partnership_id: str, mine: Iterable[str], theirs: Iterable[str]) -> tuple[int, int, int]:
    """(|mine|, |theirs|, |mine ∩ theirs|) on per-partnership hashes."""
    rekey = partnership_hasher(key, partnership_id)
    mine_keyed = {rekey(h) for h in mine}
    theirs_keyed = {rekey(h) for h in theirs}
    return len(mine_keyed), len(theirs_keyed), len(mine_keyed & theirs_keyed)


def laplace(rng: random.Random, scale: float) -> float:
    """A Laplace draw of mean 0 (inverse CDF of a uniform in (-1/2, 1/2))."""
    u = rng.random() - 0.5
    while u == -0.5:  # log(0) otherwise
        u = rng.random() - 0.5
    return -scale * math.copysign(1.0, u) * math.log(1 - 2 * abs(u))


def release(first_size: int, second_size: int, overlap: int, rng: random.Random) -> Release:
    """Noise the exact counts of a pair (sizes in the pair's sorted order) for one release."""
    noised = overlap + laplace(rng, 1 / COUNT_EPSILON)
    return Release(
        overlap=int(round(noised / ROUNDING) * ROUNDING),
        first_size=max(0, round(first_size + laplace(rng, 1 / SIZE_EPSILON))),
        second_size=max(0, round(second_size + laplace(rng, 1 / SIZE_EPSILON))),
    )


def shown_to(measured: Release, *, mine: int, theirs: int) -> OverlapEstimate:
    """A release as one side sees it (`mine`, `theirs`: the noised sizes in that side's order)."""
    # Capped by the noised sizes, rounded down like the count: post-processing, so it costs no privacy.
    shown = min(measured.overlap, mine // ROUNDING * ROUNDING, theirs // ROUNDING * ROUNDING)
    # Suppression reads only noised values: a true 49 and a true 50 look alike.
    if shown < MINIMUM:
        return OverlapEstimate(None, None, None, suppressed=True)
    return OverlapEstimate(
        overlap=shown,
        share_of_mine=round(shown / mine, 2),
        share_of_theirs=round(shown / theirs, 2),
        suppressed=False,
    )
