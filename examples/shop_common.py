"""What both example shops share: their Partnerloop client, the webhook receiver, and a page template.

The shops integrate only through Partnerloop's public API and the SDK (`partnerloop_sdk`);
they import nothing of Partnerloop's own code.
"""

from __future__ import annotations

import html
import json
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from partnerloop_sdk import Partnerloop, WebhookVerificationError, WebhookVerifier
from partnerloop_sdk.models import ShownOffer, WebhookMessage

WEBHOOK_PATH = "/webhooks/partnerloop"


@dataclass(frozen=True)
class ShopConfig:
    """A shop's settings, from the environment (the story script sets them)."""

    name: str
    partnerloop_url: str
    client_id: str
    client_secret: str
    public_url: str

    @classmethod
    def from_env(cls, name: str) -> ShopConfig:
        return cls(
            name=name,
            partnerloop_url=os.environ["PARTNERLOOP_URL"],
            client_id=os.environ["SHOP_CLIENT_ID"],
            client_secret=os.environ["SHOP_CLIENT_SECRET"],
            public_url=os.environ["SHOP_PUBLIC_URL"].rstrip("/"),
        )


@dataclass
class Inbox:
    """Webhook messages received and verified, once each (deliveries are at least once)."""

    messages: list[WebhookMessage] = field(default_factory=list)
    refused: int = 0
    duplicates: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, message: WebhookMessage) -> None:
        with self.lock:
            if any(m["id"] == message["id"] for m in self.messages):
                self.duplicates += 1
                return
            self.messages.append(message)


@dataclass
class Shop:
    """The running shop: its config, Partnerloop client, webhook verifier and inbox."""

    config: ShopConfig
    partnerloop: Partnerloop
    inbox: Inbox = field(default_factory=Inbox)
    verifier: WebhookVerifier | None = None
    state: dict[str, Any] = field(default_factory=dict)


def connect(config: ShopConfig, events: list[str]) -> Shop:
    """Log the shop's backend in with client credentials and make sure Partnerloop knows its webhook URL."""
    partnerloop = Partnerloop.with_client_credentials(config.partnerloop_url, config.client_id, config.client_secret)
    shop = Shop(config, partnerloop)
    url = config.public_url + WEBHOOK_PATH
    existing = next((e for e in partnerloop.webhook_endpoints.list() if e["url"] == url), None)
    if existing is None:
        secret = partnerloop.webhook_endpoints.create(url, events, description=f"{config.name} example shop")["secret"]
    else:
        # The secret is shown only once; a restarted shop that did not keep it takes a new one.
        secret = partnerloop.webhook_endpoints.rotate_secret(existing["id"], overlap_seconds=0)["secret"]
    shop.verifier = WebhookVerifier(secret)
    return shop


def lifespan(config: ShopConfig, events: list[str], ready: Callable[[Shop], None]) -> Any:
    """The app's lifespan: connect to Partnerloop at start, close the client at the end."""

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        shop = await run_in_threadpool(connect, config, events)
        ready(shop)
        app.state.shop = shop
        yield
        shop.partnerloop.close()

    return run


def webhook_routes() -> APIRouter:
    """Receive Partnerloop's webhooks (verified before anything else) and show what came in."""
    router = APIRouter()

    @router.post(WEBHOOK_PATH)
    async def receive(request: Request) -> Response:
        shop: Shop = request.app.state.shop
        body = await request.body()  # the raw bytes: the signature covers them exactly
        assert shop.verifier is not None
        try:
            message = shop.verifier.verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            shop.inbox.refused += 1
            return JSONResponse({"error": str(exc)}, status_code=400)
        shop.inbox.take(message)
        return Response(status_code=204)

    @router.get("/webhooks", response_class=HTMLResponse)
    def received_page(request: Request) -> str:
        shop: Shop = request.app.state.shop
        rows = "".join(
            f"<tr><td>{html.escape(m['timestamp'])}</td><td>{html.escape(m['type'])}</td>"
            f"<td><code>{html.escape(json.dumps(m['data']))}</code></td></tr>"
            for m in shop.inbox.messages
        )
        table = f"<table><tr><th>when</th><th>event</th><th>data</th></tr>{rows}</table>"
        note = f"<p>{len(shop.inbox.messages)} verified, {shop.inbox.refused} refused (bad signature).</p>"
        return page(shop.config.name, "Webhooks received", note + table)

    @router.get("/webhooks.json")
    def received_json(request: Request) -> dict[str, Any]:
        shop: Shop = request.app.state.shop
        inbox = shop.inbox
        return {"messages": inbox.messages, "refused": inbox.refused, "duplicates": inbox.duplicates}

    return router


def offer_cards(offers: list[ShownOffer]) -> str:
    """The partner offers of an exchange answer, as HTML cards."""
    if not offers:
        return '<p class="none">No partner offers for you today.</p>'
    cards = []
    for offer in offers:
        code = f'<p>Your code: <strong class="code">{html.escape(offer["code"])}</strong></p>' if offer["code"] else ""
        cards.append(
            f'<div class="offer" data-offer-id="{html.escape(offer["offer_id"])}">'
            f"<h3>{html.escape(offer['title'])}</h3><p>{html.escape(offer['description'])}</p>{code}"
            f"<p>From {html.escape(offer['partner']['display_name'])}: "
            f'<a href="{html.escape(offer["landing_url"])}">shop now</a></p></div>'
        )
    return '<section class="partner-offers"><h2>From our partners</h2>' + "".join(cards) + "</section>"


def page(shop_name: str, title: str, body: str) -> str:
    """A whole HTML page."""
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)} · "
        f"{html.escape(shop_name)}</title><style>body{{font-family:sans-serif;max-width:46rem;margin:2rem auto}}"
        ".offer{border:1px solid #ccc;border-radius:8px;padding:0 1rem;margin:1rem 0}</style></head>"
        f"<body><header><strong>{html.escape(shop_name)}</strong></header><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
