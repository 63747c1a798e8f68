"""The pet-bed shop (an example host): its customers order beds, and its order confirmation page
shows the partner offers Partnerloop's exchange picks for them (only to those who consented).

Run: PARTNERLOOP_URL=… SHOP_CLIENT_ID=… SHOP_CLIENT_SECRET=… SHOP_PUBLIC_URL=http://127.0.0.1:8101 \
     uvicorn examples.pet_beds:app --factory --port 8101
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from examples.shop_common import Shop, ShopConfig, lifespan, offer_cards, page, webhook_routes

NAME = "Snoozy Paws Beds"
NOTICE_KEY = "partner-offers"
NOTICE_TEXT = "Tick the box to see offers from our partner shops after you order. You can withdraw at any time."
EVENTS = ["partnership.*", "offer.*", "redemption.*"]
BED_CATEGORY = "cat_orthopedic_dog_beds"


def _ready(shop: Shop) -> None:
    # Grants cite the notice version the customer saw: publish ours once, then reuse its latest version.
    versions = list(shop.partnerloop.consents.notices(key=NOTICE_KEY))
    notice = versions[-1] if versions else None
    if notice is None:
        notice = shop.partnerloop.consents.publish_notice(
            NOTICE_KEY, NOTICE_TEXT, ["partner_offers"], partners="all", published_at="2026-01-01T00:00:00+00:00"
        )
    shop.state["notice_id"] = notice["id"]


def create_app(config: ShopConfig | None = None) -> FastAPI:
    """The pet-bed shop's web app."""
    app = FastAPI(title=NAME, lifespan=lifespan(config or ShopConfig.from_env(NAME), EVENTS, _ready))
    app.include_router(webhook_routes())

    @app.get("/", response_class=HTMLResponse)
    def checkout_form() -> str:
        form = (
            '<form method="post" action="/orders">'
            '<p><label>Customer number <input name="customer_id" required></label></p>'
            '<p><label>Email <input name="email" type="email"></label></p>'
            '<p><label>Orthopaedic dog bed, £129 <input name="quantity" type="number" value="1" min="1"></label></p>'
            '<p><label><input type="checkbox" name="partner_offers" value="yes"> '
            f"{html.escape(NOTICE_TEXT)}</label></p>"
            "<button>Order</button></form>"
        )
        return page(NAME, "Checkout", form)

    @app.post("/orders")
    def place_order(
        request: Request,
        customer_id: Annotated[str, Form()],
        order_id: Annotated[str, Form()] = "",
        email: Annotated[str, Form()] = "",
        quantity: Annotated[int, Form()] = 1,
        partner_offers: Annotated[str, Form()] = "",
    ) -> RedirectResponse:
        shop: Shop = request.app.state.shop
        now = datetime.now(UTC).isoformat()
        order = order_id or f"BED-{customer_id}-{int(datetime.now(UTC).timestamp())}"
        partnerloop = shop.partnerloop
        partnerloop.customers.upsert(customer_id, email=email or None)
        line = {"category_id": BED_CATEGORY, "unit_price_minor": 12_900, "quantity": quantity, "channel": "physical"}
        partnerloop.customers.record_purchase(
            customer_id, {"order_id": order, "ordered_at": now, "currency": "GBP", "lines": [line]}
        )
        if partner_offers == "yes":
            partnerloop.consents.grant(
                customer_id, event_id=f"{order}-consent", notice_id=shop.state["notice_id"], occurred_at=now
            )
        shop.state.setdefault("orders", {})[order] = customer_id
        return RedirectResponse(f"/orders/{order}/confirmation", status_code=303)

    @app.get("/orders/{order_id}/confirmation", response_class=HTMLResponse)
    def confirmation(request: Request, order_id: str) -> str:
        shop: Shop = request.app.state.shop
        customer_id = shop.state.get("orders", {}).get(order_id)
        if customer_id is None:
            return page(NAME, "Order not found", "<p>We have no such order.</p>")
        answer = shop.partnerloop.exchange.offers_for(
            customer_id,
            "order_confirmation",
            cart_categories=[BED_CATEGORY],
            region="GB",
            idempotency_key=f"{order_id}-confirmation",  # a reload shows the same offers and codes
        )
        thanks = f"<p>Thank you! Order <strong>{html.escape(order_id)}</strong> is on its way.</p>"
        return page(NAME, "Order confirmed", thanks + offer_cards(answer["offers"]))

    return app


def app() -> FastAPI:
    """For `uvicorn examples.pet_beds:app --factory`."""
    return create_app()
