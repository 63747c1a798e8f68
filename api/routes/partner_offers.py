"""Partners' offers published to the caller, as their host: read them, approve or reject a version."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.auth.principal import OffersRead, OffersWrite
from api.deps import SessionDep
from api.etags import ConditionalRoute
from api.pagination import Page, Paging
from api.routes.offer_schemas import VersionOut, version_out
from partners import offer_actions, offer_views, placements
from partners.db import utcnow
from partners.offer_rules import MAX_REASON, Approval, OfferState
from partners.partnerships import Actor

router = APIRouter(prefix="/v1", tags=["partner offers"], route_class=ConditionalRoute)


class PartnerOfferOut(BaseModel):
    offer_id: str
    partnership_id: str
    partner_tenant_id: str = Field(description="The offering partner")
    approval: Approval
    offer_state: OfferState
    pending_version: int | None = Field(description="The version awaiting your decision")
    serving_version: int | None = Field(description="The version you approved, which serves")
    rejected_version: int | None
    rejection_reason: str | None
    pending: VersionOut | None
    serving: VersionOut | None
    serving_status: str | None = Field(description="'live', or why the approved version does not serve")
    live: bool = Field(description="Shown to your customers now (subject to each customer's consent and caps)")
    submitted_at: datetime | None
    decided_at: datetime | None


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, description="The version you read and approve")


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, description="The version you read and reject")
    reason: str = Field(min_length=1, max_length=MAX_REASON, description="Why, for the partner")


def _out(view: offer_views.HostView) -> PartnerOfferOut:
    p = view.placement
    return PartnerOfferOut(
        offer_id=p.offer_id,
        partnership_id=p.partnership_id,
        partner_tenant_id=p.partner_tenant_id,
        approval=view.approval,
        offer_state=view.offer_state,
        pending_version=p.pending_version,
        serving_version=p.serving_version,
        rejected_version=p.rejected_version,
        rejection_reason=p.rejection_reason,
        pending=version_out(view.pending) if view.pending else None,
        serving=version_out(view.serving) if view.serving else None,
        serving_status=view.serving_status,
        live=view.live,
        submitted_at=p.submitted_at,
        decided_at=p.decided_at,
    )


@router.get("/partner-offers", summary="Partners' offers published to you")
def list_partner_offers(
    caller: OffersRead, session: SessionDep, paging: Paging, awaiting_approval: bool | None = None
) -> Page[PartnerOfferOut]:
    rows, more = placements.list_for_host(
        session, caller.tenant_id, awaiting=awaiting_approval, after=paging.after, limit=paging.limit
    )
    now = utcnow()
    items = [_out(offer_views.host_view(session, row, now)) for row in rows]
    return paging.page(items, more, rows[-1].id if rows else None)


@router.get("/partner-offers/{offer_id}", summary="A partner's offer published to you")
def get_partner_offer(offer_id: str, caller: OffersRead, session: SessionDep) -> PartnerOfferOut:
    return _out(offer_views.host_offer(session, caller.tenant_id, offer_id, utcnow()))


@router.post("/partner-offers/{offer_id}/approve", summary="Approve the version awaiting your decision")
def approve(offer_id: str, body: ApproveIn, caller: OffersWrite, session: SessionDep) -> PartnerOfferOut:
    host = Actor(caller.tenant_id, caller.caller_id)
    offer_actions.decide(session, host, offer_id, body.version, approve=True)
    return _out(offer_views.host_offer(session, caller.tenant_id, offer_id, utcnow()))


@router.post("/partner-offers/{offer_id}/reject", summary="Reject the version awaiting your decision, saying why")
def reject(offer_id: str, body: RejectIn, caller: OffersWrite, session: SessionDep) -> PartnerOfferOut:
    host = Actor(caller.tenant_id, caller.caller_id)
    offer_actions.decide(session, host, offer_id, body.version, approve=False, reason=body.reason)
    return _out(offer_views.host_offer(session, caller.tenant_id, offer_id, utcnow()))
