"""What the API shows of consent notices, consent events and the current consent state."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from partners.consent_ledger import ConsentEvent, ConsentState
from partners.notices import ConsentNotice


class NoticeOut(BaseModel):
    id: str
    key: str
    language: str
    version: int
    text: str
    purposes: list[str]
    partners: list[str] | Literal["all"] = Field(description='Named partner tenant ids, or "all" active partners')
    published_at: datetime
    created_at: datetime


def notice_out(notice: ConsentNotice) -> NoticeOut:
    return NoticeOut(
        id=notice.id,
        key=notice.key,
        language=notice.language,
        version=notice.version,
        text=notice.text,
        purposes=list(notice.purposes),
        partners="all" if notice.all_partners else list(notice.partners),
        published_at=notice.published_at,
        created_at=notice.created_at,
    )


class OriginOut(BaseModel):
    ip: str | None
    user_agent: str | None
    page_url: str | None


class ConsentEventOut(BaseModel):
    id: str
    event_id: str = Field(description="Your id for the event; several purposes of one event share it")
    seq: int = Field(description="Arrival order among this customer's events")
    action: str
    purpose: str
    partner: str
    method: str
    source: str
    notice_id: str | None
    confirms: str | None
    occurred_at: datetime
    recorded_at: datetime
    origin: OriginOut


def event_out(event: ConsentEvent) -> ConsentEventOut:
    return ConsentEventOut(
        id=event.id,
        event_id=event.event_id,
        seq=event.seq,
        action=event.action,
        purpose=event.purpose,
        partner=event.partner,
        method=event.method,
        source=event.source,
        notice_id=event.notice_id,
        confirms=event.confirms,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        origin=OriginOut(ip=event.origin_ip, user_agent=event.origin_user_agent, page_url=event.origin_page),
    )


class ConsentStateOut(BaseModel):
    purpose: str
    partner: str = Field(description='A partner tenant id, or "all" active partners')
    status: str = Field(description="granted, pending (double opt-in awaiting confirmation) or withdrawn")
    notice_id: str | None
    decided_by: str = Field(description="The consent event (cev_…) that set this status")
    decided_at: datetime
    updated_at: datetime


def state_out(state: ConsentState) -> ConsentStateOut:
    return ConsentStateOut(
        purpose=state.purpose,
        partner=state.partner,
        status=state.status,
        notice_id=state.notice_id,
        decided_by=state.decided_by,
        decided_at=state.decided_at,
        updated_at=state.updated_at,
    )
