"""Data-subject requests: erasure (GDPR Art. 17) and export (Art. 20)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.auth.principal import CustomersWrite
from api.deps import SessionDep, SettingsDep
from api.idempotency import IdempotentRoute
from api.views.consents import ConsentEventOut, ConsentStateOut, NoticeOut, event_out, notice_out, state_out
from api.views.customers import ProfileOut, PurchaseOut, profile_out, purchase_out
from partners import privacy
from partners.interests import LTV_HORIZON_DAYS

router = APIRouter(prefix="/v1", tags=["privacy"], route_class=IdempotentRoute)

EXPORT_FORMAT = "partnerloop.customer-export/1"


class ErasureOut(BaseModel):
    external_id: str
    erased_at: datetime
    partners_notified: int = Field(description="Partners that received anything and are told to erase too")
    already_erased: bool


class ExportedCustomer(BaseModel):
    id: str
    external_id: str
    email_hash: str | None = Field(description="Keyed hash of the normalized email, under the platform key")
    email: str | None = Field(description="Only when you asked us to keep the address")
    created_at: datetime
    updated_at: datetime


class ExportedDisclosure(BaseModel):
    partner_id: str
    first_at: datetime
    last_at: datetime


class ExportedAnswer(BaseModel):
    id: str
    placement: str
    shown: int = Field(description="How many partner offers the answer showed")
    asked_at: datetime


class ExportedOfferShown(BaseModel):
    impression_id: str
    partner_id: str
    partner_name: str
    offer_id: str
    offer_version: int
    placement: str
    code: str | None
    shown_at: datetime


class ExportedCode(BaseModel):
    partner_id: str
    offer_id: str
    code: str
    reserved_at: datetime | None
    redeemed_at: datetime | None


class ExportedRedemption(BaseModel):
    id: str
    partner_id: str = Field(description="The partner shop where the order was placed")
    offer_id: str
    impression_id: str
    order_id: str
    order_value: int
    currency: str
    redeemed_at: datetime
    reversed_at: datetime | None


class CustomerExportOut(BaseModel):
    format: Literal["partnerloop.customer-export/1"]
    exported_at: datetime
    customer: ExportedCustomer
    purchases: list[PurchaseOut]
    profile: ProfileOut
    consent_history: list[ConsentEventOut] = Field(description="Every consent event, in arrival order")
    consents: list[ConsentStateOut] = Field(description="The current state derived from the history")
    notices: list[NoticeOut] = Field(description="The notice versions the history cites")
    partners_informed: list[ExportedDisclosure] = Field(description="Partners that received anything")
    exchange_answers: list[ExportedAnswer] = Field(description="Every time we were asked which offers to show")
    offers_shown: list[ExportedOfferShown] = Field(description="Partner offers shown to the customer")
    codes: list[ExportedCode] = Field(description="Single-use codes partner shops reserved for the customer")
    redemptions: list[ExportedRedemption] = Field(description="Orders at partner shops credited to an offer shown")


@router.post(
    "/customers/{external_id}/erasure",
    summary="Erase the customer; keeps only a keyed-hash suppression entry and tells partners",
)
def erase(external_id: str, caller: CustomersWrite, session: SessionDep, settings: SettingsDep) -> ErasureOut:
    erasure = privacy.erase_customer(
        session, caller.tenant_id, external_id, hash_key=settings.identity_hash_key.get_secret_value().encode()
    )
    return ErasureOut(
        external_id=erasure.external_id,
        erased_at=erasure.erased_at,
        partners_notified=erasure.partners_notified,
        already_erased=erasure.already_erased,
    )


@router.get("/customers/{external_id}/export", summary="Everything held about the customer, as one JSON document")
def export(external_id: str, caller: CustomersWrite, session: SessionDep, settings: SettingsDep) -> CustomerExportOut:
    data = privacy.export_customer(
        session, caller.tenant_id, external_id, encryption_key=settings.encryption_key.get_secret_value()
    )
    customer = data.customer
    return CustomerExportOut(
        format=EXPORT_FORMAT,
        exported_at=data.exported_at,
        customer=ExportedCustomer(
            id=customer.id,
            external_id=customer.external_id,
            email_hash=customer.email_hash,
            email=data.email,
            created_at=customer.created_at,
            updated_at=customer.updated_at,
        ),
        purchases=[purchase_out(order.purchase, order.lines) for order in data.orders],
        profile=profile_out(customer.external_id, data.profile, data.exported_at, LTV_HORIZON_DAYS),
        consent_history=[event_out(e) for e in data.consent_events],
        consents=[state_out(s) for s in data.consent_states],
        notices=[notice_out(n) for n in data.notices],
        partners_informed=[
            ExportedDisclosure(partner_id=d.partner_tenant_id, first_at=d.first_at, last_at=d.last_at)
            for d in data.disclosures
        ],
        exchange_answers=[
            ExportedAnswer(id=a.id, placement=a.placement, shown=a.shown, asked_at=a.created_at) for a in data.answers
        ],
        offers_shown=[
            ExportedOfferShown(
                impression_id=s.impression.id,
                partner_id=s.impression.offering_tenant_id,
                partner_name=s.partner_name,
                offer_id=s.impression.offer_id,
                offer_version=s.impression.offer_version,
                placement=s.impression.placement,
                code=s.impression.code,
                shown_at=s.impression.created_at,
            )
            for s in data.offers_shown
        ],
        codes=[
            ExportedCode(
                partner_id=c.tenant_id,
                offer_id=c.offer_id,
                code=c.code,
                reserved_at=c.reserved_at,
                redeemed_at=c.redeemed_at,
            )
            for c in data.codes
        ],
        redemptions=[
            ExportedRedemption(
                id=r.id,
                partner_id=r.tenant_id,
                offer_id=r.offer_id,
                impression_id=r.impression_id,
                order_id=r.order_id,
                order_value=r.order_value,
                currency=r.currency,
                redeemed_at=r.redeemed_at,
                reversed_at=r.reversed_at,
            )
            for r in data.redemptions
        ],
    )
