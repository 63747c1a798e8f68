"""Redemptions reported by the offering shop: record, read, reverse."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth.principal import RedemptionsWrite
from api.deps import SessionDep
from api.etags import ConditionalRoute
from partners import redemptions
from partners.db import utcnow

router = APIRouter(prefix="/v1", tags=["redemptions"], route_class=ConditionalRoute)


class RedemptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(min_length=1, max_length=128, description="Your order id; reporting it again is a no-op")
    order_value: int = Field(gt=0, le=redemptions.MAX_ORDER_VALUE, description="Order value in minor units")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    code: str | None = Field(default=None, min_length=1, max_length=64, description="The code the customer used")
    impression_id: str | None = Field(default=None, max_length=40, description="Or the impression the order came from")
    redeemed_at: datetime | None = Field(default=None, description="When the order was placed (default: now)")


class ReverseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=500, description="Why (a refund, a cancellation)")


class RedemptionOut(BaseModel):
    id: str
    order_id: str
    impression_id: str
    partnership_id: str
    host_tenant_id: str
    offer_id: str
    code: str | None
    order_value: int
    currency: str
    commission_bps: int
    commission: int
    redeemed_at: datetime
    reversed_at: datetime | None
    reversal_reason: str | None


def _out(r: redemptions.Redemption) -> RedemptionOut:
    return RedemptionOut.model_validate(r, from_attributes=True)


@router.post(
    "/redemptions",
    status_code=201,
    summary="Report an order that used a partner offer's code (or came from an impression)",
    responses={
        200: {"model": RedemptionOut, "description": "This order was reported before with the same details: as stored"}
    },
    description=(
        "201 when recorded; 200 when the same order was already reported with the same details. "
        "Refusals are problems with their own `code`: `unknown_code`, `unknown_impression` (404), "
        "`code_expired`, `outside_attribution_window`, `currency_mismatch` (422), "
        "`code_already_redeemed`, `order_already_reported` (409)."
    ),
)
def report_redemption(
    body: RedemptionIn, caller: RedemptionsWrite, session: SessionDep, response: Response
) -> RedemptionOut:
    data = redemptions.RedemptionInput(**body.model_dump())
    recorded = redemptions.record(session, caller.tenant_id, data, now=utcnow())
    if not recorded.created:
        response.status_code = 200
    return _out(recorded.redemption)


@router.get("/redemptions/{redemption_id}", summary="One of your redemptions")
def get_redemption(redemption_id: str, caller: RedemptionsWrite, session: SessionDep) -> RedemptionOut:
    return _out(redemptions.get(session, caller.tenant_id, redemption_id))


@router.post("/redemptions/{redemption_id}/reverse", summary="Record a refund: the commission is netted")
def reverse_redemption(
    redemption_id: str, body: ReverseIn, caller: RedemptionsWrite, session: SessionDep
) -> RedemptionOut:
    return _out(redemptions.reverse(session, caller.tenant_id, redemption_id, body.reason, now=utcnow()))
