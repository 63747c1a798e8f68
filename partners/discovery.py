"""Suggested partners for a retailer: complementary shops, competitors left out unless asked for."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from partners import profiles
from partners.matching import Complementarity, rank


@dataclass(frozen=True)
class Suggestion:
    profile: profiles.RetailerProfile
    complementarity: Complementarity


def suggest(
    session: Session,
    tenant_id: str,
    *,
    include_competitors: bool = False,
    region: str | None = None,
    currency: str | None = None,
    limit: int = 20,
) -> list[Suggestion]:
    """Ranked suggestions for the caller (who must have a profile); unrelated shops are left out."""
    mine = profiles.facts(profiles.get_profile(session, tenant_id))
    candidates = {
        p.tenant_id: p
        for p in profiles.discoverable_profiles(session, tenant_id)
        if (region is None or region in p.regions) and (currency is None or currency in p.currencies)
    }
    ranked = rank(mine, [profiles.facts(p) for p in candidates.values()], include_competitors)
    related = [r for r in ranked if r.complementarity.score > 0 or r.complementarity.competitor]
    return [Suggestion(candidates[r.retailer.tenant_id], r.complementarity) for r in related[:limit]]
