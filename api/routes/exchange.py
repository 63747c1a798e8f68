"""The exchange: which partner offers to show one of the caller's customers now."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from api.auth.principal import ExchangeRead
from api.deps import MetricsDep, SessionDep, SettingsDep
from api.idempotency import IdempotentRoute
from partners import exchange
from partners.db import utcnow

router = APIRouter(prefix="/v1", tags=["exchange"], route_class=IdempotentRoute)


class ExchangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_external_id: str = Field(min_length=1, max_length=128, description="Your id for the customer")
    placement: exchange.Placement
    limit: int = Field(default=3, ge=1, le=exchange.MAX_OFFERS)
    cart_categories: list[str] = Field(default_factory=list, max_length=50, description="Taxonomy ids in the order")
    region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", description="The customer's country, if known")
    one_per_partner: StrictBool = True
    dry_run: StrictBool = Field(default=False, description="Answer without recording impressions or reserving codes")


class PartnerOut(BaseModel):
    tenant_id: str
    display_name: str


class ShownOfferOut(BaseModel):
    impression_id: str | None = Field(description="Quote it when the customer redeems (absent in a dry run)")
    offer_id: str
    version: int
    partner: PartnerOut
    rank: int
    score: float
    kind: str
    title: str
    description: str
    landing_url: str
    currency: str
    percent_off: float | None
    amount_off: int | None
    friend_amount_off: int | None
    minimum_order: int | None
    code: str | None = Field(description="Single-use codes are reserved for this customer")
    ends_at: datetime | None
    public_sale_starts_at: datetime | None


class ExchangeOut(BaseModel):
    answer_id: str | None
    offers: list[ShownOfferOut]


def _shown(s: exchange.OfferShown) -> ShownOfferOut:
    o = s.offer
    return ShownOfferOut(
        impression_id=s.impression_id,
        offer_id=o.offer_id,
        version=o.serving_version,
        partner=PartnerOut(tenant_id=o.offering_tenant_id, display_name=s.partner_name),
        rank=s.rank,
        score=s.score,
        kind=o.kind,
        title=o.title,
        description=o.description,
        landing_url=o.landing_url,
        currency=o.currency,
        percent_off=o.percent_off_bps / 100 if o.percent_off_bps is not None else None,
        amount_off=o.amount_off,
        friend_amount_off=o.friend_amount_off,
        minimum_order=o.minimum_order,
        code=s.code,
        ends_at=o.ends_at,
        public_sale_starts_at=o.public_sale_starts_at,
    )


@router.post(
    "/exchange",
    summary="Partner offers to show this customer now (recorded as impressions)",
    description="Unknown customers get an empty answer, like customers with nothing to show.",
)
def ask(
    body: ExchangeIn, caller: ExchangeRead, session: SessionDep, settings: SettingsDep, metrics: MetricsDep
) -> ExchangeOut:
    request = exchange.ExchangeRequest(
        customer_external_id=body.customer_external_id,
        placement=body.placement,
        limit=body.limit,
        cart_categories=tuple(body.cart_categories),
        region=body.region,
        one_per_partner=body.one_per_partner,
        dry_run=body.dry_run,
    )
    key = settings.secret_key.get_secret_value().encode()
    result = exchange.answer(session, caller.tenant_id, request, now=utcnow(), code_key=key)
    metrics.count_decisions(result.decisions)
    return ExchangeOut(answer_id=result.answer_id, offers=[_shown(s) for s in result.offers])
