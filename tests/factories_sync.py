"""Factories for offer feeds: a tenant's feed on a made-up partner host, and that host's answers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from partners import offer_feeds
from partners.db import utcnow
from partners.offer_feeds import OfferFeed
from partners.retailers import Tenant
from partners.settings import Settings
from tests.factories_offers import offer_body
from tests.factories_webhooks import PARTNER_HOST, local_policy

FEED_URL = f"https://{PARTNER_HOST}/offers.json"
TOKEN_URL = f"https://{PARTNER_HOST}/oauth/token"
CLIENT_ID = "partnerloop-sync"
CLIENT_SECRET = "feed-secret-do-not-leak-0123456789"


_STARTS = utcnow().replace(microsecond=0) - timedelta(days=1)


def feed_item(external_id: str, **overrides: Any) -> dict[str, Any]:
    """One offer as a shop's feed lists it (the same window every time, as a real feed would)."""
    window = {"starts_at": _STARTS.isoformat(), "ends_at": (_STARTS + timedelta(days=60)).isoformat()}
    return {"external_id": external_id, **offer_body(**{**window, **overrides})}


def token_response(access_token: str = "partner-access-token") -> httpx.Response:  # noqa: S107
    """What the partner's token endpoint answers to a valid client-credentials request."""
    return httpx.Response(200, json={"access_token": access_token, "token_type": "Bearer", "expires_in": 3600})


@pytest.fixture
def make_offer_feed(session: Session, settings: Settings) -> Callable[..., OfferFeed]:
    """An offer feed of `tenant` on the made-up partner host, due now."""

    def make(tenant: Tenant, interval: timedelta = offer_feeds.DEFAULT_INTERVAL, **overrides: Any) -> OfferFeed:
        values: dict[str, Any] = {
            "url": FEED_URL,
            "token_url": TOKEN_URL,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "interval": interval,
        }
        values.update(overrides)
        feed = offer_feeds.register(
            session,
            tenant.id,
            offer_feeds.FeedInput(**values),
            policy=local_policy(),
            encryption_key=settings.encryption_key.get_secret_value(),
        )
        session.commit()
        return feed

    return make
