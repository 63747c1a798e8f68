"""The pet-care shop (an example offering partner): it publishes a flea & tick offer to its partner
shops, and when a customer orders with the partner code it reports the redemption to Partnerloop.

Run: PARTNERLOOP_URL=… SHOP_CLIENT_ID=… SHOP_CLIENT_SECRET=… SHOP_PUBLIC_URL=http://127.0.0.1:8102 \
     uvicorn examples.pet_care:app --factory --port 8102
"""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse

from examples.shop_common import Shop, ShopConfig, lifespan, offer_cards, page, webhook_routes
from partnerloop_sdk import PartnerloopError

NAME = "Pawsome Care"
OFFER_ID = "flea-tick-15"  # our own id for the offer: publishing again updates it, never duplicates it
EVENTS = ["partnership.*", "offer.*", "redemption.*", "consent.withdrawn", "erasure.requested"]
POOL_SIZE = 50
REFUSALS = {
    "code_already_redeemed": "This code was used already: each code works once.",
    "unknown_code": "We do not know this code.",
    "code_expired": "This code has expired.",
    "outside_attribution_window": "This code has expired.",
}


def flea_tick_offer(now: datetime) -> dict[str, Any]:
    """The offer as our own catalogue describes it."""
    return {
        "title": "15% off flea & tick protection",
        "description": "Keep your dog's new bed pest-free: 15% off our flea & tick range.",
        "landing_url": "https://pawsomecare.example/partner",
        "kind": "percent_off",
        "percent_off": 15.0,
        "currency": "GBP",
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(days=90)).isoformat(),
        "targeting": {"categories": ["cat_flea_tick", "cat_dog_beds"]},
        "codes": {"mode": "pool"},
    }


def create_app(config: ShopConfig | None = None) -> FastAPI:
    """The pet-care shop's web app."""
    app = FastAPI(title=NAME, lifespan=lifespan(config or ShopConfig.from_env(NAME), EVENTS, lambda _shop: None))
    app.include_router(webhook_routes())

    @app.post("/admin/publish-offer")
    def publish_offer(request: Request) -> dict[str, Any]:
        """Upsert our offer by its id, fill its pool of single-use codes, submit it to every active partner."""
        shop: Shop = request.app.state.shop
        partnerloop = shop.partnerloop
        active = [p["id"] for p in partnerloop.partnerships.list(state="active")]
        upserted = partnerloop.offers.upsert(OFFER_ID, flea_tick_offer(datetime.now(UTC)), publish_to=active)
        offer = upserted.offer
        if not offer["codes"].get("available"):
            partnerloop.offers.generate_codes(offer["id"], POOL_SIZE, prefix="PAW-")
        offer = partnerloop.offers.get(offer["id"])
        return {"offer_id": offer["id"], "status": offer["status"], "partnerships": active}

    @app.get("/", response_class=HTMLResponse)
    def order_form() -> str:
        form = (
            '<form method="post" action="/orders">'
            '<p><label>Order number <input name="order_id" required></label></p>'
            '<p><label>Flea &amp; tick spot-on, £40 <input name="amount" type="number" value="4000"></label></p>'
            '<p><label>Partner code <input name="code"></label></p><button>Order</button></form>'
        )
        return page(NAME, "Checkout", form)

    @app.post("/orders", response_class=HTMLResponse)
    def place_order(
        request: Request,
        order_id: Annotated[str, Form()],
        amount: Annotated[int, Form()] = 4000,
        code: Annotated[str, Form()] = "",
    ) -> HTMLResponse:
        shop: Shop = request.app.state.shop
        thanks = f"<p>Order <strong>{html.escape(order_id)}</strong> confirmed.</p>"
        if not code:
            return HTMLResponse(page(NAME, "Order confirmed", thanks))
        try:
            recorded = shop.partnerloop.redemptions.record(order_id, amount, "GBP", code=code)
        except PartnerloopError as refused:
            reason = REFUSALS.get(refused.code, refused.detail)
            body = f'<p class="refused" data-code="{html.escape(refused.code)}">{html.escape(reason)}</p>'
            return HTMLResponse(page(NAME, "Code not applied", body), status_code=409)
        redemption = recorded.redemption
        body = (
            f'{thanks}<p class="applied" data-redemption-id="{html.escape(redemption["id"])}">'
            f"Partner code {html.escape(code)} applied.</p>"
        )
        return HTMLResponse(page(NAME, "Order confirmed", body))

    @app.get("/customers/{customer_id}/confirmation", response_class=HTMLResponse)
    def confirmation(request: Request, customer_id: str) -> str:
        """Our own order confirmation page: the offers our partners publish to us, if any."""
        shop: Shop = request.app.state.shop
        answer = shop.partnerloop.exchange.offers_for(customer_id, "order_confirmation")
        return page(NAME, "Order confirmed", "<p>Thank you for your order.</p>" + offer_cards(answer["offers"]))

    return app


def app() -> FastAPI:
    """For `uvicorn examples.pet_care:app --factory`."""
    return create_app()
