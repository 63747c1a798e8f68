"""The caller's own offers: create, upsert by external id, edit, publish, pause, resume, archive, codes."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth.principal import OffersRead, OffersWrite, Principal
from api.deps import SessionDep
from api.etags import ConditionalRoute, IfMatch, IfNoneMatch, require_absent, require_match
from api.pagination import Page, Paging
from api.routes.offer_schemas import (
    OfferPatch,
    PlacementOut,
    VersionOut,
    placement_out,
    version_out,
)
from partners import codes, offer_actions, offer_views, offers
from partners.db import utcnow
from partners.offer_input import OfferIn, OfferUpsertIn
from partners.offer_rules import CodeMode, OfferAction, OfferKind, OfferState
from partners.partnerships import Actor

router = APIRouter(prefix="/v1", tags=["offers"], route_class=ConditionalRoute)


class BudgetOut(BaseModel):
    redemptions: int | None
    value: int | None
    used_redemptions: int
    used_value: int


class CodesOut(BaseModel):
    mode: CodeMode
    shared_code: str | None
    total: int | None = Field(description="Codes in the pool (pool mode)")
    available: int | None = Field(description="Codes not yet handed out (pool mode)")


class OfferOut(BaseModel):
    id: str
    external_id: str | None
    state: OfferState
    status: str = Field(description="draft, submitted, approved, rejected, live, paused, expired or archived")
    latest_version: int
    content: VersionOut = Field(description="The latest version")
    budget: BudgetOut
    codes: CodesOut
    placements: list[PlacementOut]
    created_at: datetime
    updated_at: datetime


class OfferSummary(BaseModel):
    id: str
    external_id: str | None
    state: OfferState
    latest_version: int
    title: str
    kind: OfferKind
    starts_at: datetime
    ends_at: datetime | None
    created_at: datetime
    updated_at: datetime


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    partnership_ids: list[str] = Field(min_length=1, max_length=100)


class CodesUploadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    codes: list[str] = Field(min_length=1, max_length=codes.MAX_BATCH)


class CodesGenerateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=1, le=codes.MAX_BATCH)
    prefix: str = Field(default="", max_length=10)


class CodesUploadOut(BaseModel):
    added: int
    already_in_pool: int
    total: int
    available: int


class CodesGeneratedOut(BaseModel):
    codes: list[str]
    total: int
    available: int


def _actor(caller: Principal) -> Actor:
    return Actor(caller.tenant_id, caller.caller_id)


def _out(session: SessionDep, caller: Principal, offer_id: str) -> OfferOut:
    view = offer_views.owner_view(session, caller.tenant_id, offer_id, utcnow())
    offer = view.offer
    return OfferOut(
        id=offer.id,
        external_id=offer.external_id,
        state=OfferState(offer.state),
        status=view.status,
        latest_version=offer.latest_version,
        content=version_out(view.latest),
        budget=BudgetOut(
            redemptions=offer.budget_redemptions,
            value=offer.budget_value,
            used_redemptions=offer.used_redemptions,
            used_value=offer.used_value,
        ),
        codes=CodesOut(
            mode=CodeMode(offer.code_mode),
            shared_code=offer.shared_code,
            total=view.codes.total if view.codes else None,
            available=view.codes.available if view.codes else None,
        ),
        placements=[placement_out(p) for p in view.placements],
        created_at=offer.created_at,
        updated_at=offer.updated_at,
    )


@router.post("/offers", status_code=201, summary="Create a draft offer")
def create_offer(body: OfferIn, caller: OffersWrite, session: SessionDep) -> OfferOut:
    created = offer_actions.create(session, _actor(caller), body.content(), body.settings())
    return _out(session, caller, created.id)


@router.put(
    "/offers/by-external-id/{external_id}",
    summary="Create or replace the offer with your external id (idempotent, for sync jobs)",
    responses={201: {"model": OfferOut, "description": "Created"}, 200: {"description": "Replaced, or unchanged"}},
)
def upsert_offer(
    external_id: str,
    body: OfferUpsertIn,
    caller: OffersWrite,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> OfferOut:
    if if_match is not None or if_none_match is not None:
        existing = offers.find_by_external_id(session, caller.tenant_id, external_id, for_update=True)
        require_absent(if_none_match, existing is not None)
        require_match(if_match, _out(session, caller, existing.id) if existing is not None else None)
    offer, created = offer_actions.upsert(
        session, _actor(caller), external_id, body.content(), body.settings(), body.publish_to
    )
    response.status_code = 201 if created else 200
    return _out(session, caller, offer.id)


@router.get("/offers", summary="Your offers")
def list_offers(
    caller: OffersRead,
    session: SessionDep,
    paging: Paging,
    state: OfferState | None = None,
    external_id: str | None = None,
) -> Page[OfferSummary]:
    rows, more = offers.list_for(
        session, caller.tenant_id, state=state, external_id=external_id, after=paging.after, limit=paging.limit
    )
    items = [
        OfferSummary(
            id=offer.id,
            external_id=offer.external_id,
            state=OfferState(offer.state),
            latest_version=offer.latest_version,
            title=latest.title,
            kind=OfferKind(latest.kind),
            starts_at=latest.starts_at,
            ends_at=latest.ends_at,
            created_at=offer.created_at,
            updated_at=offer.updated_at,
        )
        for offer, latest in offer_views.summaries(session, rows)
    ]
    return paging.page(items, more, rows[-1].id if rows else None)


@router.get("/offers/{offer_id}", summary="An offer, its latest version and where it is published")
def get_offer(offer_id: str, caller: OffersRead, session: SessionDep) -> OfferOut:
    return _out(session, caller, offer_id)


@router.patch("/offers/{offer_id}", summary="Change an offer (a published one gets a new version to approve)")
def patch_offer(
    offer_id: str, body: OfferPatch, caller: OffersWrite, session: SessionDep, if_match: IfMatch = None
) -> OfferOut:
    if if_match is not None:
        # Locked first, so the representation checked is the one the edit applies to.
        offers.get(session, caller.tenant_id, offer_id, for_update=True)
        require_match(if_match, _out(session, caller, offer_id))
    offer_actions.edit(session, _actor(caller), offer_id, body.changes())
    return _out(session, caller, offer_id)


@router.post("/offers/{offer_id}/publish", summary="Submit the latest version to partnerships for approval")
def publish_offer(offer_id: str, body: PublishIn, caller: OffersWrite, session: SessionDep) -> OfferOut:
    offer_actions.publish(session, _actor(caller), offer_id, body.partnership_ids)
    return _out(session, caller, offer_id)


def _lifecycle(action: OfferAction, summary: str) -> None:
    @router.post(f"/offers/{{offer_id}}/{action.value}", summary=summary, name=f"{action.value}_offer")
    def handler(offer_id: str, caller: OffersWrite, session: SessionDep) -> OfferOut:
        offer_actions.change_state(session, _actor(caller), offer_id, action)
        return _out(session, caller, offer_id)


_lifecycle(OfferAction.pause, "Pause a published offer everywhere")
_lifecycle(OfferAction.resume, "Resume a paused offer")
_lifecycle(OfferAction.archive, "Archive an offer (final)")


@router.post("/offers/{offer_id}/codes", summary="Upload single-use codes to the offer's pool")
def upload_codes(offer_id: str, body: CodesUploadIn, caller: OffersWrite, session: SessionDep) -> CodesUploadOut:
    result = offer_actions.upload_codes(session, _actor(caller), offer_id, body.codes)
    pool = codes.counts(session, caller.tenant_id, offer_id)
    return CodesUploadOut(
        added=result.added, already_in_pool=result.already_in_pool, total=pool.total, available=pool.available
    )


@router.post("/offers/{offer_id}/codes/generate", summary="Generate single-use codes into the offer's pool")
def generate_codes(offer_id: str, body: CodesGenerateIn, caller: OffersWrite, session: SessionDep) -> CodesGeneratedOut:
    made = offer_actions.generate_codes(session, _actor(caller), offer_id, body.count, body.prefix)
    pool = codes.counts(session, caller.tenant_id, offer_id)
    return CodesGeneratedOut(codes=made, total=pool.total, available=pool.available)
