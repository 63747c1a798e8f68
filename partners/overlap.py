"""Audience overlap between two partners, as an aggregate that cannot single out a customer.

Inputs are the platform's keyed email hashes of the customers who consented to overlap
analysis on each side. They are re-keyed per partnership (so a hash means nothing
outside it) and intersected by the platform; neither side ever sees the other's hashes.

What protects one customer's membership:
- counts below `MINIMUM` are never shown ("fewer than 50");
- shown counts carry Laplace noise and are rounded to a multiple of `ROUNDING`;
- an estimate is computed at most once per partnership per day and then replayed, so
  repeating a query or adding and removing one probe customer yields no fresh samples
  to average; a change of one customer is hidden by the noise and the rounding.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

from partners.identity import partnership_hash

MINIMUM = 50
ROUNDING = 10
NOISE_SCALE = 5.0


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
    mine_keyed = {partnership_hash(key, partnership_id, h) for h in mine}
    theirs_keyed = {partnership_hash(key, partnership_id, h) for h in theirs}
    return len(mine_keyed), len(theirs_keyed), len(mine_keyed & theirs_keyed)


def _laplace(rng: random.Random, scale: float) -> float:
    u = rng.random() - 0.5
    return -scale * math.copysign(1.0, u) * math.log(1 - 2 * abs(u))


def publishable(mine: int, theirs: int, overlap: int, rng: random.Random) -> OverlapEstimate:
    """Turn exact counts into what may be shown."""
    if overlap < MINIMUM:
        return OverlapEstimate(None, None, None, suppressed=True)
    noisy = overlap + _laplace(rng, NOISE_SCALE)
    shown = int(round(noisy / ROUNDING) * ROUNDING)
    if shown < MINIMUM:
        return OverlapEstimate(None, None, None, suppressed=True)
    shown = min(shown, mine, theirs)
    return OverlapEstimate(
        overlap=shown,
        share_of_mine=round(shown / mine, 2),
        share_of_theirs=round(shown / theirs, 2),
        suppressed=False,
    )


def estimate(
    key: bytes, partnership_id: str, mine: Iterable[str], theirs: Iterable[str], rng: random.Random
) -> OverlapEstimate:
    """The overlap estimate from the two sides' stored keyed hashes."""
    return publishable(*true_overlap(key, partnership_id, mine, theirs), rng)
