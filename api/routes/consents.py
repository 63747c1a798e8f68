"""Consent notices, consent events, withdrawal, the current state, and preference links."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.auth.principal import ConsentsWrite
from api.deps import SessionDep, SettingsDep
from api.idempotency import IdempotentRoute
from api.pagination import Page, Paging
from api.preference_links import DEFAULT_TTL_DAYS, MAX_TTL_DAYS, issue_link
from api.views.consents import ConsentEventOut, ConsentStateOut, NoticeOut, event_out, notice_out, state_out
from partners import consent, consent_ledger, customers, notices, partnerships
from partners.consent_input import ConsentEventIn, OriginIn, origin_of
from partners.consent_rules import ALL_PARTNERS, Method, Purpose, Source

router = APIRouter(prefix="/v1", tags=["consents"], route_class=IdempotentRoute)

# Which tenants count as the caller's active partners: the partnerships module decides.
is_active_partner = partnerships.is_active_partner


class NoticeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=100, description="Names the notice across versions")
    language: str = Field(min_length=2, max_length=35, description="BCP 47 tag, such as en or de-CH")
    text: str = Field(min_length=1, max_length=notices.MAX_TEXT, description="The notice exactly as shown")
    purposes: list[Purpose] = Field(min_length=1, max_length=len(Purpose))
    partners: list[str] | Literal["all"] = Field(description='Named partner tenant ids, or "all" active partners')
    published_at: AwareDatetime | None = Field(default=None, description="When customers first saw it; default now")


class WithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purposes: list[Purpose] = Field(default_factory=lambda: list(Purpose), min_length=1, max_length=len(Purpose))
    partner: str = Field(default=ALL_PARTNERS, max_length=40, description='A partner tenant id, or "all" (default)')
    method: Method
    source: Source
    event_id: str | None = Field(default=None, min_length=1, max_length=100)
    occurred_at: AwareDatetime | None = Field(default=None, description="Default now")
    origin: OriginIn | None = None


class ConsentResult(BaseModel):
    replayed: bool = Field(description="True when this event_id was recorded already; nothing changed")
    events: list[ConsentEventOut] = Field(description="One per purpose")
    consents: list[ConsentStateOut] = Field(description="The customer's current state afterwards")


class CurrentConsents(BaseModel):
    external_id: str
    consents: list[ConsentStateOut]


class PreferenceLinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ttl_days: int = Field(default=DEFAULT_TTL_DAYS, ge=1, le=MAX_TTL_DAYS)


class PreferenceLinkOut(BaseModel):
    url: str
    expires_at: AwareDatetime


def _result(session: SessionDep, tenant_id: str, recorded: consent.Recorded) -> ConsentResult:
    states = consent_ledger.current_state(session, tenant_id, recorded.customer.id)
    return ConsentResult(
        replayed=recorded.replayed,
        events=[event_out(e) for e in recorded.events],
        consents=[state_out(s) for s in states],
    )


@router.post("/consent-notices", status_code=201, summary="Publish a privacy notice (the next version of its key)")
def create_notice(body: NoticeIn, caller: ConsentsWrite, session: SessionDep) -> NoticeOut:
    notice = notices.create_notice(
        session,
        caller.tenant_id,
        notices.NoticeInput(
            key=body.key,
            language=body.language,
            text=body.text,
            purposes=tuple(body.purposes),
            partners=None if body.partners == ALL_PARTNERS else tuple(body.partners),
            published_at=body.published_at,
        ),
        is_active_partner=is_active_partner,
    )
    return notice_out(notice)


@router.get("/consent-notices", summary="Notice versions, oldest first")
def list_notices(
    caller: ConsentsWrite,
    session: SessionDep,
    paging: Paging,
    key: Annotated[str | None, Query(max_length=100, description="Only versions of this key")] = None,
) -> Page[NoticeOut]:
    rows, more = notices.list_notices(session, caller.tenant_id, paging.after, paging.limit, key)
    return paging.page([notice_out(n) for n in rows], more, rows[-1].id if rows else None)


@router.get("/consent-notices/{notice_id}", summary="One notice version")
def get_notice(notice_id: str, caller: ConsentsWrite, session: SessionDep) -> NoticeOut:
    return notice_out(notices.get_notice(session, caller.tenant_id, notice_id))


@router.post(
    "/customers/{external_id}/consent-events",
    status_code=201,
    summary="Record a grant, a double opt-in confirmation or a withdrawal",
    responses={200: {"model": ConsentResult, "description": "This event_id was recorded already; nothing changed"}},
)
def record_event(
    external_id: str, body: ConsentEventIn, caller: ConsentsWrite, session: SessionDep, response: Response
) -> ConsentResult:
    event = body.domain()
    recorded = consent.record_event(session, caller.tenant_id, external_id, event, is_active_partner=is_active_partner)
    if recorded.replayed:
        response.status_code = 200
    return _result(session, caller.tenant_id, recorded)


@router.get("/customers/{external_id}/consent-events", summary="The customer's consent history, as recorded")
def list_events(external_id: str, caller: ConsentsWrite, session: SessionDep, paging: Paging) -> Page[ConsentEventOut]:
    customer = customers.get_customer(session, caller.tenant_id, external_id)
    rows, more = consent_ledger.history(session, caller.tenant_id, customer.id, paging.after, paging.limit)
    return paging.page([event_out(e) for e in rows], more, rows[-1].id if rows else None)


@router.post(
    "/customers/{external_id}/consents/withdraw",
    summary="Withdraw purposes for one partner or all, effective before this call returns",
)
def withdraw(external_id: str, body: WithdrawIn, caller: ConsentsWrite, session: SessionDep) -> ConsentResult:
    recorded = consent.withdraw(
        session,
        caller.tenant_id,
        external_id,
        method=body.method,
        source=body.source,
        purposes=tuple(body.purposes),
        partner=body.partner,
        origin=origin_of(body.origin),
        event_id=body.event_id,
        occurred_at=body.occurred_at,
    )
    return _result(session, caller.tenant_id, recorded)


@router.get("/customers/{external_id}/consents", summary="The customer's current consent state")
def current(external_id: str, caller: ConsentsWrite, session: SessionDep) -> CurrentConsents:
    customer = customers.get_customer(session, caller.tenant_id, external_id)
    states = consent_ledger.current_state(session, caller.tenant_id, customer.id)
    return CurrentConsents(external_id=customer.external_id, consents=[state_out(s) for s in states])


@router.post(
    "/customers/{external_id}/preference-link",
    status_code=201,
    summary="A signed, expiring link to the customer's own preference page (no login)",
)
def preference_link(
    external_id: str,
    caller: ConsentsWrite,
    session: SessionDep,
    settings: SettingsDep,
    body: PreferenceLinkIn | None = None,
) -> PreferenceLinkOut:
    customer = customers.get_customer(session, caller.tenant_id, external_id)
    link = issue_link(settings, caller.tenant_id, customer.id, (body or PreferenceLinkIn()).ttl_days)
    return PreferenceLinkOut(url=link.url, expires_at=link.expires_at)
