"""Partnerships: propose with terms, accept, counter, decline, pause, resume, end; terms and history."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from api.auth.principal import PartnershipsWrite, PartnersRead, Principal
from api.deps import SessionDep, SettingsDep
from api.etags import ConditionalRoute
from api.pagination import Page, Paging
from api.routes.discovery import PublicProfile, public_profile
from partners import overlap_releases, partnerships, profiles, serving
from partners import terms as terms_store
from partners.db import utcnow
from partners.partnership_rules import Action, State

router = APIRouter(prefix="/v1", tags=["partnerships"], route_class=ConditionalRoute)


class TermsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    my_offer_categories: list[str] = Field(min_length=1, max_length=100, description="Categories your offers may be in")
    partner_offer_categories: list[str] = Field(
        min_length=1, max_length=100, description="Categories the partner's offers may be in"
    )
    cap_per_7_days: int = Field(description="Partner offers per customer per rolling 7 days (0–50)")
    cap_per_30_days: int = Field(description="... per rolling 30 days (≥ the 7-day cap, ≤ 200)")
    commission_percent: float = Field(description="Commission on redeemed order value, 0–100")
    attribution_window_days: int = Field(description="Days after an impression a redemption counts (1–90)")
    reciprocity_target: float = Field(default=1.0, description="Target ratio of impressions given to received")
    contact_sharing: StrictBool = Field(
        default=False, description="Whether customer contact details may ever be shared"
    )
    agreement_text: str = Field(min_length=1, max_length=20_000, description="The data-sharing agreement")

    def domain(self) -> terms_store.TermsInput:
        return terms_store.TermsInput(**self.model_dump())


class ProposalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    partner_tenant_id: str = Field(min_length=1, max_length=40)
    terms: TermsIn


class CounterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    terms: TermsIn


class AcceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    terms_version: int = Field(ge=1, description="The version you read and accept")
    agreement_sha256: str = Field(min_length=64, max_length=64, description="SHA-256 of the agreement you read")


class TermsOut(BaseModel):
    version: int
    proposed_by: str
    my_offer_categories: list[str]
    partner_offer_categories: list[str]
    cap_per_7_days: int
    cap_per_30_days: int
    commission_percent: float
    attribution_window_days: int
    reciprocity_target: float
    contact_sharing: bool
    agreement_text: str
    agreement_sha256: str
    proposed_at: datetime
    accepted_at: datetime | None


class PartnershipOut(BaseModel):
    id: str
    partner_tenant_id: str
    initiated_by_me: bool
    state: State
    agreed_terms_version: int | None
    pending_terms_version: int | None
    awaiting_my_answer: bool
    created_at: datetime
    updated_at: datetime


class PartnershipDetail(PartnershipOut):
    agreed_terms: TermsOut | None
    pending_terms: TermsOut | None
    partner: PublicProfile | None


class HistoryEntry(BaseModel):
    action: str
    by_me: bool
    actor_id: str | None = Field(description="The staff user or client; only for your own side's actions")
    from_state: str | None
    to_state: str
    terms_version: int | None
    at: datetime


class HistoryOut(BaseModel):
    data: list[HistoryEntry]


class TermsVersions(BaseModel):
    data: list[TermsOut]


def _terms_out(row: terms_store.PartnershipTerms, reader: str, partner: str) -> TermsOut:
    return TermsOut(
        version=row.version,
        proposed_by=row.proposed_by,
        my_offer_categories=row.offer_categories.get(reader, []),
        partner_offer_categories=row.offer_categories.get(partner, []),
        cap_per_7_days=row.cap_per_7_days,
        cap_per_30_days=row.cap_per_30_days,
        commission_percent=row.commission_bps / 100,
        attribution_window_days=row.attribution_window_days,
        reciprocity_target=row.reciprocity_target,
        contact_sharing=row.contact_sharing,
        agreement_text=row.agreement_text,
        agreement_sha256=row.agreement_sha256,
        proposed_at=row.proposed_at,
        accepted_at=row.accepted_at,
    )


def _out(p: partnerships.Partnership) -> PartnershipOut:
    return PartnershipOut(
        id=p.id,
        partner_tenant_id=p.partner_tenant_id,
        initiated_by_me=p.initiated_by_me,
        state=p.state,
        agreed_terms_version=p.agreed_version,
        pending_terms_version=p.pending_version,
        awaiting_my_answer=p.pending_version is not None and not p.pending_by_me,
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


def _detail(session: SessionDep, p: partnerships.Partnership) -> PartnershipDetail:
    def version(number: int | None) -> TermsOut | None:
        if number is None:
            return None
        return _terms_out(terms_store.get_version(session, p.tenant_id, p.id, number), p.tenant_id, p.partner_tenant_id)

    partner = profiles.find_profile(session, p.partner_tenant_id)
    return PartnershipDetail(
        **_out(p).model_dump(),
        agreed_terms=version(p.agreed_version),
        pending_terms=version(p.pending_version),
        partner=public_profile(partner) if partner is not None else None,
    )


def _actor(caller: Principal) -> partnerships.Actor:
    return partnerships.Actor(caller.tenant_id, caller.caller_id)


@router.post("/partnerships", status_code=201, summary="Propose a partnership with terms")
def propose(body: ProposalIn, caller: PartnershipsWrite, session: SessionDep) -> PartnershipDetail:
    created = partnerships.propose(session, _actor(caller), body.partner_tenant_id, body.terms.domain())
    return _detail(session, created)


@router.get("/partnerships", summary="The caller's partnerships")
def list_partnerships(
    caller: PartnersRead, session: SessionDep, paging: Paging, state: State | None = None
) -> Page[PartnershipOut]:
    rows, more = partnerships.list_for(session, caller.tenant_id, state, paging.after, paging.limit)
    return paging.page([_out(p) for p in rows], more, rows[-1].id if rows else None)


@router.get("/partnerships/{partnership_id}", summary="A partnership, its terms and the partner's public profile")
def get_partnership(partnership_id: str, caller: PartnersRead, session: SessionDep) -> PartnershipDetail:
    return _detail(session, partnerships.get(session, caller.tenant_id, partnership_id))


@router.get("/partnerships/{partnership_id}/terms", summary="Every version of the terms, oldest first")
def terms_versions(partnership_id: str, caller: PartnersRead, session: SessionDep) -> TermsVersions:
    p = partnerships.get(session, caller.tenant_id, partnership_id)
    rows = terms_store.all_versions(session, caller.tenant_id, partnership_id)
    return TermsVersions(data=[_terms_out(r, p.tenant_id, p.partner_tenant_id) for r in rows])


@router.get("/partnerships/{partnership_id}/history", summary="Who did what, when")
def partnership_history(partnership_id: str, caller: PartnersRead, session: SessionDep) -> HistoryOut:
    events = partnerships.history(session, caller.tenant_id, partnership_id)
    return HistoryOut(
        data=[
            HistoryEntry(
                action=e.action,
                by_me=e.actor_tenant_id == caller.tenant_id,
                actor_id=e.actor_id if e.actor_tenant_id == caller.tenant_id else None,
                from_state=e.from_state,
                to_state=e.to_state,
                terms_version=e.terms_version,
                at=e.at,
            )
            for e in events
        ]
    )


@router.post("/partnerships/{partnership_id}/accept", summary="Accept the pending terms (names the version read)")
def accept(partnership_id: str, body: AcceptIn, caller: PartnershipsWrite, session: SessionDep) -> PartnershipDetail:
    accepting = (body.terms_version, body.agreement_sha256)
    changed = serving.act_on_partnership(session, _actor(caller), partnership_id, Action.accept, accepting=accepting)
    return _detail(session, changed)


@router.post("/partnerships/{partnership_id}/counter", summary="Answer pending terms with other terms")
def counter(partnership_id: str, body: CounterIn, caller: PartnershipsWrite, session: SessionDep) -> PartnershipDetail:
    changed = serving.act_on_partnership(
        session, _actor(caller), partnership_id, Action.counter, new_terms=body.terms.domain()
    )
    return _detail(session, changed)


@router.post("/partnerships/{partnership_id}/terms", summary="Propose a new version of the terms")
def propose_terms(
    partnership_id: str, body: CounterIn, caller: PartnershipsWrite, session: SessionDep
) -> PartnershipDetail:
    changed = serving.act_on_partnership(
        session, _actor(caller), partnership_id, Action.propose_terms, new_terms=body.terms.domain()
    )
    return _detail(session, changed)


def overlap_randomness() -> random.Random:
    """Where the overlap noise comes from: the OS's random source (tests pin a seed)."""
    return random.SystemRandom()


class OverlapOut(BaseModel):
    overlap: int | None = Field(description="Customers in both audiences, noised and rounded; null when suppressed")
    share_of_mine: float | None
    share_of_theirs: float | None
    suppressed: bool
    minimum: int
    display: str
    as_of: datetime = Field(description="When this estimate was measured; it is replayed until the next one")
    releases_left: int = Field(description="Fresh estimates this pair of retailers may still get (privacy budget)")
    next_release_at: datetime | None = Field(description="The earliest next measurement; null once the budget is spent")


@router.get(
    "/partnerships/{partnership_id}/overlap",
    summary="Audience overlap estimate (consenting customers only; differentially private; suppressed below 50)",
    responses={409: {"description": "The partnership is not active, or a side did not opt in"}},
)
def audience_overlap(
    partnership_id: str,
    caller: PartnersRead,
    session: SessionDep,
    settings: SettingsDep,
    rng: Annotated[random.Random, Depends(overlap_randomness)],
) -> OverlapOut:
    key = settings.identity_hash_key.get_secret_value().encode()
    found = overlap_releases.overlap_for(session, caller.tenant_id, partnership_id, key, utcnow(), rng)
    shown = found.estimate
    return OverlapOut(
        overlap=shown.overlap,
        share_of_mine=shown.share_of_mine,
        share_of_theirs=shown.share_of_theirs,
        suppressed=shown.suppressed,
        minimum=shown.minimum,
        display=shown.display,
        as_of=found.as_of,
        releases_left=found.releases_left,
        next_release_at=found.next_release_at,
    )


def _simple(action: Action, summary: str) -> None:
    @router.post(
        f"/partnerships/{{partnership_id}}/{action.value}", summary=summary, name=f"{action.value}_partnership"
    )
    def handler(partnership_id: str, caller: PartnershipsWrite, session: SessionDep) -> PartnershipDetail:
        return _detail(session, serving.act_on_partnership(session, _actor(caller), partnership_id, action))


_simple(Action.decline, "Decline the pending proposal or terms")
_simple(Action.pause, "Pause an active partnership")
_simple(Action.resume, "Resume a partnership you paused")
_simple(Action.end, "End the partnership (or withdraw your proposal)")
