"""The exchange: which partner offers to show one of the caller's customers now (the hot path).

`async def` with no session dependency: on PostgreSQL the domain runs on the app's psycopg pool
(`partners.exchange_async`), on SQLite the sync path runs in the threadpool. The answer is
rendered straight to JSON (`ExchangeOut` documents it and `tests/api` checks the shape), not
re-validated through the response model.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api.auth.bearer import ExchangeCaller
from api.auth.principal import revoked
from api.deps import EngineDep, MetricsDep, SettingsDep
from api.idempotency import IdempotentRoute
from partners import exchange, exchange_async, tokens
from partners.db import unit_of_work, utcnow
from partners.live_offers import LiveOfferRow

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


def _time(value: datetime | None) -> str | None:
    # As pydantic writes an aware UTC datetime: ISO 8601 with a `Z`.
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _shown(s: exchange.OfferShown) -> dict[str, Any]:
    o: LiveOfferRow = s.offer
    return {
        "impression_id": s.impression_id,
        "offer_id": o.offer_id,
        "version": o.serving_version,
        "partner": {"tenant_id": o.offering_tenant_id, "display_name": s.partner_name},
        "rank": s.rank,
        "score": float(s.score),
        "kind": o.kind,
        "title": o.title,
        "description": o.description,
        "landing_url": o.landing_url,
        "currency": o.currency,
        "percent_off": o.percent_off_bps / 100 if o.percent_off_bps is not None else None,
        "amount_off": o.amount_off,
        "friend_amount_off": o.friend_amount_off,
        "minimum_order": o.minimum_order,
        "code": s.code,
        "ends_at": _time(o.ends_at),
        "public_sale_starts_at": _time(o.public_sale_starts_at),
    }


def render(result: exchange.ExchangeResult) -> bytes:
    """The answer as `ExchangeOut` JSON."""
    body = {"answer_id": result.answer_id, "offers": [_shown(s) for s in result.offers]}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _answer_sync(
    engine: Engine, host: str, family: str | None, request: exchange.ExchangeRequest, key: bytes
) -> exchange.ExchangeResult | None:
    """The sync path in one transaction (SQLite); None if the token's family was revoked."""
    with unit_of_work(engine) as session:
        if family is not None and not tokens.family_is_active(session, family):
            return None
        return exchange.answer(session, host, request, now=utcnow(), code_key=key)


def _refresh(engine: Engine, answered: exchange_async.Answered) -> None:
    with unit_of_work(engine) as session:
        exchange.refresh_dry_pools(session, answered.dry_pools)


@router.post(
    "/exchange",
    summary="Partner offers to show this customer now (recorded as impressions)",
    description="Unknown customers get an empty answer, like customers with nothing to show.",
    response_model=ExchangeOut,
)
async def ask(
    body: ExchangeIn,
    caller: ExchangeCaller,
    http: Request,
    settings: SettingsDep,
    engine: EngineDep,
    metrics: MetricsDep,
) -> Response:
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
    host, family = caller.principal.tenant_id, caller.unchecked_family
    pool = getattr(http.app.state, "exchange_pool", None)
    if pool is None:
        result = await run_in_threadpool(_answer_sync, engine, host, family, request, key)
        if result is None:
            raise revoked()
    else:
        async with pool.connection() as conn:
            try:
                answered = await exchange_async.answer(
                    conn,
                    host,
                    request,
                    now=utcnow(),
                    code_key=key,
                    cache=http.app.state.serving_cache,
                    family_id=family,
                )
            except exchange_async.RevokedToken:
                raise revoked() from None
        if answered.dry_pools:
            await run_in_threadpool(_refresh, engine, answered)
        result = answered.result
    metrics.count_decisions(result.decisions)
    return Response(render(result), media_type="application/json")
