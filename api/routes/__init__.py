"""One module per resource; each exposes `router`. `ROUTERS` is what the app mounts, in order."""

from fastapi import APIRouter

from api.routes import (
    clients,
    consents,
    customers,
    discovery,
    exchange,
    health,
    login,
    oauth,
    offers,
    partner_offers,
    partnerships,
    preferences,
    privacy,
    profile,
    redemptions,
    reports,
    staff,
    tenants,
    uploads,
    webhooks,
)

ROUTERS: list[APIRouter] = [
    health.router,
    oauth.router,
    login.router,
    tenants.router,
    staff.router,
    clients.router,
    profile.router,
    discovery.router,
    partnerships.router,
    customers.router,
    consents.router,
    privacy.router,
    preferences.router,
    offers.router,
    partner_offers.router,
    exchange.router,
    redemptions.router,
    reports.router,
    webhooks.router,
    uploads.router,
]
