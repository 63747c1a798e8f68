"""Suggested partners, ranked by complementarity, with the score explained."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.auth.principal import PartnersRead
from api.deps import SessionDep
from partners import discovery

router = APIRouter(prefix="/v1", tags=["partners"])


class PublicProfile(BaseModel):
    """What every retailer may see of another: never customers, terms or offers."""

    tenant_id: str
    display_name: str
    website: str
    description: str
    categories: dict[str, float]
    regions: list[str]
    currencies: list[str]
    price_positioning: str


class SuggestionOut(BaseModel):
    partner: PublicProfile
    score: float
    competitor: bool
    shared_categories: list[str]
    overlapping_categories: list[str]
    explanation: str
    reasons: list[str]


class Suggestions(BaseModel):
    data: list[SuggestionOut]


def public_profile(profile: object) -> PublicProfile:
    return PublicProfile.model_validate(profile, from_attributes=True)


@router.get("/partner-suggestions", summary="Complementary retailers to partner with, best first")
def suggestions(
    caller: PartnersRead,
    session: SessionDep,
    include_competitors: bool = False,
    region: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$")] = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Suggestions:
    found = discovery.suggest(
        session,
        caller.tenant_id,
        include_competitors=include_competitors,
        region=region,
        currency=currency,
        limit=limit,
    )
    return Suggestions(
        data=[
            SuggestionOut(
                partner=public_profile(s.profile),
                score=s.complementarity.score,
                competitor=s.complementarity.competitor,
                shared_categories=list(s.complementarity.shared_ancestors),
                overlapping_categories=list(s.complementarity.overlapping_leaves),
                explanation="; ".join(s.complementarity.reasons),
                reasons=list(s.complementarity.reasons),
            )
            for s in found
        ]
    )
