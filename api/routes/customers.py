"""Customers (pseudonymous), their purchases, and the interest profile derived from them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool

from api.auth.principal import CustomersWrite
from api.deps import SessionDep, SettingsDep
from api.etags import ConditionalRoute
from api.pagination import Page, Paging
from api.views.customers import CustomerOut, ProfileOut, PurchaseOut, customer_out, profile_out, purchase_out
from partners import customers, interest_store, interests, purchases
from partners.db import utcnow
from partners.purchases import Channel

router = APIRouter(prefix="/v1", tags=["customers"], route_class=ConditionalRoute)


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(
        default=None, max_length=320, description="Normalized, then kept only as a keyed hash (unless store_email)"
    )
    store_email: StrictBool = Field(default=False, description="Also keep the address, encrypted, for your own use")


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category_id: str = Field(max_length=100, description="A category of the shared taxonomy")
    unit_price_minor: int = Field(ge=0, le=purchases.MAX_UNIT_PRICE_MINOR, description="In minor units")
    quantity: int = Field(default=1, ge=1, le=purchases.MAX_QUANTITY)
    channel: Channel


class PurchaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(min_length=1, max_length=100, description="Your order id; sending it again is a no-op")
    ordered_at: AwareDatetime
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217")
    lines: list[LineIn] = Field(min_length=1, max_length=purchases.MAX_LINES)


@router.put(
    "/customers/{external_id}",
    summary="Register a customer, or replace what we hold about it",
    responses={201: {"model": CustomerOut, "description": "Created"}},
)
def put_customer(
    external_id: str,
    body: CustomerIn,
    caller: CustomersWrite,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> CustomerOut:
    result = customers.upsert_customer(
        session,
        caller.tenant_id,
        external_id,
        email=body.email,
        store_email=body.store_email,
        hash_key=settings.identity_hash_key.get_secret_value().encode(),
        encryption_key=settings.encryption_key.get_secret_value(),
    )
    response.status_code = 201 if result.created else 200
    return customer_out(result.customer, body.email.strip() if body.email and body.store_email else None)


@router.get("/customers/{external_id}", summary="One customer")
def get_customer(external_id: str, caller: CustomersWrite, session: SessionDep, settings: SettingsDep) -> CustomerOut:
    customer = customers.get_customer(session, caller.tenant_id, external_id)
    return customer_out(customer, customers.stored_email(customer, settings.encryption_key.get_secret_value()))


@router.post(
    "/customers/{external_id}/purchases",
    status_code=201,
    summary="Record an order; the customer's interest profile follows at once",
    responses={200: {"model": PurchaseOut, "description": "This order was recorded already; nothing changed"}},
)
def post_purchase(
    external_id: str, body: PurchaseIn, caller: CustomersWrite, session: SessionDep, response: Response
) -> PurchaseOut:
    recorded = purchases.record_purchase(
        session,
        caller.tenant_id,
        external_id,
        purchases.PurchaseInput(
            order_id=body.order_id,
            ordered_at=body.ordered_at,
            currency=body.currency,
            lines=tuple(
                purchases.LineInput(x.category_id, x.unit_price_minor, x.quantity, x.channel) for x in body.lines
            ),
        ),
    )
    if not recorded.created:
        response.status_code = 200
    return purchase_out(recorded.purchase, recorded.lines)


@router.get("/customers/{external_id}/purchases", summary="A customer's orders, in the order we received them")
def list_purchases(external_id: str, caller: CustomersWrite, session: SessionDep, paging: Paging) -> Page[PurchaseOut]:
    customer = customers.get_customer(session, caller.tenant_id, external_id)
    rows, more = purchases.list_purchases(session, caller.tenant_id, customer.id, paging.after, paging.limit)
    lines = purchases.lines_of(session, caller.tenant_id, [row.id for row in rows])
    return paging.page([purchase_out(row, lines[row.id]) for row in rows], more, rows[-1].id if rows else None)


@router.get("/customers/{external_id}/profile", summary="Interests, price bands, spend and lifetime value")
def get_profile(
    external_id: str,
    caller: CustomersWrite,
    session: SessionDep,
    horizon_days: Annotated[
        int, Query(ge=1, le=3650, description="Horizon of the lifetime-value estimate")
    ] = interests.LTV_HORIZON_DAYS,
) -> ProfileOut:
    customer = customers.get_customer(session, caller.tenant_id, external_id)
    state = interest_store.load_profile(session, caller.tenant_id, customer.id)
    return profile_out(customer.external_id, state, utcnow(), horizon_days)
