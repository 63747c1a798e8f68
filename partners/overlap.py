"""Audience overlap between two partners, as an aggregate that cannot single out a customer.

Inputs are the platform's keyed email hashes of the customers who consented to overlap
analysis on each side. They are re-keyed per partnership (so a hash means nothing
outside it) and intersected by the platform; neither side ever sees the other's hashes.

What protects one customer's membership (docs/partnerships.md, "Audience overlap", says
why and where it stops):
- Laplace noise, then rounding to a multiple of `ROUNDING`; what is suppressed ("fewer than
  50") is decided on that noised value, so the threshold does not reveal the true count;
- the noise is not drawn afresh: it is a function of the pair of retailers and of the
  intersection, under a platform key. Asking again, on another day, after ending and
  re-proposing the partnership, or after padding one's own side with customers the partner
  does not have, all give the same answer: there are no fresh samples to average;
- the seed follows the intersection's keyed min-hash, not all its members, so adding or
  removing one shared customer usually keeps the same noise, and the answer then moves only
  when the count crosses a rounding step (about one time in `ROUNDING`).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable
from dataclasses import dataclass

from partners.identity import partnership_hasher

MINIMUM = 50
ROUNDING = 10
NOISE_SCALE = 5.0

_PAIR_CONTEXT = b"partnerloop/overlap-pair/v1\x00"
_SEED_CONTEXT = b"partnerloop/overlap-noise/v1\x00"


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


@dataclass(frozen=True)
class Counts:
    """The exact sizes, and the noise seed that belongs to this intersection and pair."""

    mine: int
    theirs: int
    overlap: int
    seed: bytes


def true_overlap(key: bytes, partnership_id: str, mine: Iterable[str], theirs: Iterable[str]) -> tuple[int, int, int]:
    """(|mine|, |theirs|, |mine ∩ theirs|) on per-partnership hashes."""
    rekey = partnership_hasher(key, partnership_id)
    mine_keyed = {rekey(h) for h in mine}
    theirs_keyed = {rekey(h) for h in theirs}
    return len(mine_keyed), len(theirs_keyed), len(mine_keyed & theirs_keyed)


def _pair_key(key: bytes, tenants: tuple[str, str]) -> bytes:
    # Per pair, not per partnership: ending and re-proposing must not buy a fresh draw.
    first, second = sorted(tenants)
    return hmac.digest(key, _PAIR_CONTEXT + first.encode() + b"\x00" + second.encode(), "sha256")


def noise_seed(key: bytes, tenants: tuple[str, str], shared: Iterable[str]) -> bytes:
    """The seed of the noise for this pair and intersection (stored hashes of the shared customers)."""
    pair_key = _pair_key(key, tenants)
    # The smallest member under the pair's key (a min-hash): unchanged by one more or one fewer
    # member unless that member is the minimum, which nobody without the key can aim for.
    smallest = min((hmac.digest(pair_key, h.encode(), "sha256") for h in shared), default=b"")
    return hmac.digest(pair_key, _SEED_CONTEXT + smallest, "sha256")


def laplace(seed: bytes, scale: float) -> float:
    """A Laplace draw that is a pure function of `seed`."""
    # 53 bits of the seed as a uniform in (0, 1), never exactly 0.
    u = (int.from_bytes(hashlib.sha256(seed).digest()[:7], "big") >> 3) / 2**53 + 2**-54 - 0.5
    return -scale * math.copysign(1.0, u) * math.log(1 - 2 * abs(u))


def publishable(counts: Counts) -> OverlapEstimate:
    """Turn exact counts into what may be shown: noised, rounded, suppressed on the noised value."""
    noisy = counts.overlap + laplace(counts.seed, NOISE_SCALE)
    shown = int(round(noisy / ROUNDING) * ROUNDING)
    # The decision to suppress reads only the noised value: a true 49 and a true 50 look alike.
    if shown < MINIMUM:
        return OverlapEstimate(None, None, None, suppressed=True)
    # Capped by the side sizes, which each side knows of itself anyway.
    shown = min(shown, counts.mine, counts.theirs)
    if shown < MINIMUM:
        return OverlapEstimate(None, None, None, suppressed=True)
    return OverlapEstimate(
        overlap=shown,
        share_of_mine=round(shown / counts.mine, 2),
        share_of_theirs=round(shown / counts.theirs, 2),
        suppressed=False,
    )


def count(
    key: bytes, tenants: tuple[str, str], partnership_id: str, mine: Iterable[str], theirs: Iterable[str]
) -> Counts:
    """The exact counts and the noise seed from the two sides' stored keyed hashes (`tenants`: mine, theirs)."""
    mine_set, theirs_set = set(mine), set(theirs)
    sizes = true_overlap(key, partnership_id, mine_set, theirs_set)
    # The stored hashes are the same platform-keyed values on both sides, so their intersection is
    # the per-partnership one; the seed is keyed by the pair so it survives re-partnering.
    return Counts(*sizes, seed=noise_seed(key, tenants, mine_set & theirs_set))


def estimate(
    key: bytes, tenants: tuple[str, str], partnership_id: str, mine: Iterable[str], theirs: Iterable[str]
) -> OverlapEstimate:
    """The overlap estimate from the two sides' stored keyed hashes."""
    return publishable(count(key, tenants, partnership_id, mine, theirs))
