"""Reach forecast: how many of a partner's customers your offer could reach now (an aggregate)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.auth.principal import OffersRead
from api.deps import SessionDep
from partners import forecast
from partners.db import utcnow

router = APIRouter(prefix="/v1", tags=["offers"])


class ForecastOut(BaseModel):
    offer_id: str
    version: int = Field(description="The offer version forecast (the latest)")
    partnership_id: str
    eligible: int | None = Field(description=f"Rounded down to {forecast.ROUNDING}; null when suppressed")
    suppressed: bool = Field(description=f"True below {forecast.MINIMUM} customers")
    display: str = Field(description="'about 1230' or 'fewer than 50'")
    blocked: str | None = Field(
        description="Why nobody could be shown it: `partnership_inactive`, `offer_archived`, `sale_public`, "
        "`not_allowed` (terms or brand safety)"
    )
    not_applied: list[str] = Field(description="Targeting the forecast cannot apply (a region is known per call)")
    as_of: datetime


@router.get(
    "/offers/{offer_id}/forecast",
    summary="How many of the partner's customers the offer could reach now",
    description="Counts the host's customers who consent to your offers, fit the targeting, are interested "
    "in its categories and have not reached the frequency caps. Works before the offer goes live.",
)
def get_forecast(
    offer_id: str,
    caller: OffersRead,
    session: SessionDep,
    partnership_id: Annotated[str, Query(max_length=40, description="One of your partnerships")],
) -> ForecastOut:
    f = forecast.forecast(session, caller.tenant_id, offer_id, partnership_id, now=utcnow())
    return ForecastOut(
        offer_id=f.offer_id,
        version=f.version,
        partnership_id=f.partnership_id,
        eligible=f.eligible,
        suppressed=f.suppressed,
        display=f.display,
        blocked=f.blocked,
        not_applied=list(f.not_applied),
        as_of=f.as_of,
    )
