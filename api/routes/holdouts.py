"""Holdouts: hold some eligible customers back from a partnership's or one offer's offers, and read the lift."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.auth.principal import OffersWrite, PartnershipsWrite, ReportsRead
from api.deps import SessionDep
from api.pagination import Page, Paging
from partners import holdout_report, holdouts, lift
from partners.db import utcnow

router = APIRouter(prefix="/v1", tags=["holdouts"])
DEFAULT_WINDOW_DAYS = 30


class HoldoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # strict: `false` is not a share of 0 (pydantic would read a JSON boolean as a number).
    share_percent: float = Field(strict=True, description="0–50, up to two decimals; 0 ends the holdout")


class HoldoutOut(BaseModel):
    id: str
    partnership_id: str
    offer_id: str | None = Field(description="null: every offer of the partnership")
    share_percent: float
    started_at: datetime
    ended_at: datetime | None


class HoldoutStateOut(BaseModel):
    running: HoldoutOut | None = Field(description="The running holdout; null when none (share 0)")


def _out(h: holdouts.Holdout) -> HoldoutOut:
    return HoldoutOut(
        id=h.id,
        partnership_id=h.partnership_id,
        offer_id=None if h.offer_id == holdouts.WHOLE_PARTNERSHIP else h.offer_id,
        share_percent=h.share_bps / 100,
        started_at=h.started_at,
        ended_at=h.ended_at,
    )


@router.put(
    "/partnerships/{partnership_id}/holdout",
    summary="Hold a share of your eligible customers back from every offer of this partnership",
)
def put_partnership_holdout(
    partnership_id: str, body: HoldoutIn, caller: PartnershipsWrite, session: SessionDep
) -> HoldoutStateOut:
    share = holdouts.share_bps(body.share_percent)
    running = holdouts.set_for_partnership(session, caller.tenant_id, partnership_id, share, utcnow())
    return HoldoutStateOut(running=_out(running) if running else None)


@router.put(
    "/partner-offers/{offer_id}/holdout",
    summary="Hold a share of your eligible customers back from one partner offer",
)
def put_offer_holdout(offer_id: str, body: HoldoutIn, caller: OffersWrite, session: SessionDep) -> HoldoutStateOut:
    share = holdouts.share_bps(body.share_percent)
    running = holdouts.set_for_offer(session, caller.tenant_id, offer_id, share, utcnow())
    return HoldoutStateOut(running=_out(running) if running else None)


@router.get("/holdouts", summary="Your holdouts, running and ended, oldest first")
def list_holdouts(caller: ReportsRead, session: SessionDep, paging: Paging) -> Page[HoldoutOut]:
    rows, more = holdouts.list_holdouts(session, caller.tenant_id, paging.after, paging.limit)
    return paging.page([_out(h) for h in rows], more, rows[-1].id if rows else None)


class GroupOut(BaseModel):
    customers: int
    repeaters: int = Field(description="Customers with at least one order with you in their window")
    repeat_rate: float | None
    spend_minor: int = Field(description="Their orders' total in `currency`, over their windows")
    spend_per_customer_minor: float | None


class IntervalOut(BaseModel):
    estimate: float
    low: float = Field(description="95 % confidence interval")
    high: float


class LiftOut(BaseModel):
    repeat_rate: IntervalOut | None = Field(description="Shown − held out, as a rate difference (0.05 = 5 points)")
    relative: float | None = Field(description="Shown rate / held-out rate − 1")
    spend_per_customer_minor: IntervalOut | None = Field(description="Shown − held out, minor units")
    verdict: lift.Verdict
    message: str


class HoldoutReportOut(BaseModel):
    holdout: HoldoutOut
    start: datetime
    end: datetime
    window_days: int
    currency: str
    shown: GroupOut
    held_out: GroupOut
    held_out_share: float | None = Field(description="The share actually held out, to compare with the setting")
    still_in_window: int = Field(description="Customers left out because their window has not ended yet")
    lift: LiftOut


def _group(g: lift.Group) -> GroupOut:
    return GroupOut(
        customers=g.customers,
        repeaters=g.repeaters,
        repeat_rate=g.repeat_rate,
        spend_minor=sum(g.spend_minor),
        spend_per_customer_minor=g.spend_per_customer,
    )


def _interval(i: lift.Interval | None) -> IntervalOut | None:
    return IntervalOut(estimate=i.estimate, low=i.low, high=i.high) if i else None


@router.get(
    "/reports/holdouts/{holdout_id}",
    summary="Repeat purchase rate and spend, shown versus held out, and the lift with its confidence interval",
)
def holdout_lift(
    holdout_id: str,
    caller: ReportsRead,
    session: SessionDep,
    currency: Annotated[
        str | None, Query(pattern=r"^[A-Z]{3}$", description="Orders in this currency count (default: your first)")
    ] = None,
    start: Annotated[
        datetime | None, Query(alias="from", description="First eligible from (default: 90 days ago)")
    ] = None,
    end: Annotated[datetime | None, Query(alias="to", description="... until (exclusive; default now)")] = None,
    window_days: Annotated[
        int, Query(ge=1, le=holdout_report.MAX_WINDOW_DAYS, description="Days after first eligibility that count")
    ] = DEFAULT_WINDOW_DAYS,
) -> HoldoutReportOut:
    now = utcnow()
    end = end or now
    start = start or end - timedelta(days=90)
    r = holdout_report.report(
        session,
        caller.tenant_id,
        holdout_id,
        start=start,
        end=end,
        window_days=window_days,
        currency=currency,
        now=now,
    )
    return HoldoutReportOut(
        holdout=_out(r.holdout),
        start=r.start,
        end=r.end,
        window_days=r.window_days,
        currency=r.currency,
        shown=_group(r.shown),
        held_out=_group(r.held_out),
        held_out_share=r.held_out_share,
        still_in_window=r.still_in_window,
        lift=LiftOut(
            repeat_rate=_interval(r.lift.repeat_rate),
            relative=r.lift.relative,
            spend_per_customer_minor=_interval(r.lift.spend_per_customer),
            verdict=r.lift.verdict,
            message=r.lift.message,
        ),
    )
