"""Signed, expiring links to a customer's preference page, and that page's CSRF tokens."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from partners.crypto import sign, unsign
from partners.settings import Settings

LINK_PURPOSE = "preference-link"
CSRF_PURPOSE = "preference-csrf"
CSRF_COOKIE = "plp_pref_csrf"
CSRF_TTL = 3600
DEFAULT_TTL_DAYS = 30
MAX_TTL_DAYS = 90


@dataclass(frozen=True)
class PreferenceLink:
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class LinkHolder:
    tenant_id: str
    customer_id: str


def _key(settings: Settings) -> str:
    return settings.secret_key.get_secret_value()


def issue_link(settings: Settings, tenant_id: str, customer_id: str, ttl_days: int) -> PreferenceLink:
    """A URL the customer can open without logging in, until it expires."""
    ttl = ttl_days * 86400
    token = sign(_key(settings), LINK_PURPOSE, {"t": tenant_id, "c": customer_id}, ttl)
    expires_at = datetime.fromtimestamp(int(time.time()) + ttl, UTC)
    return PreferenceLink(f"{settings.base_url.rstrip('/')}/preferences/{token}", expires_at)


def read_link(settings: Settings, token: str) -> LinkHolder | None:
    """Whose page a link opens, or None if it is forged or expired."""
    payload = unsign(_key(settings), LINK_PURPOSE, token)
    if payload is None or not isinstance(payload.get("t"), str) or not isinstance(payload.get("c"), str):
        return None
    return LinkHolder(payload["t"], payload["c"])


def new_csrf(settings: Settings, customer_id: str, purpose: str = CSRF_PURPOSE) -> tuple[str, str]:
    """A nonce for the cookie, and the form token that must come back with it (`purpose`: whose page)."""
    nonce = secrets.token_urlsafe(16)
    return nonce, sign(_key(settings), purpose, {"n": nonce, "c": customer_id}, CSRF_TTL)


def csrf_ok(settings: Settings, customer_id: str, token: str, cookie: str | None, purpose: str = CSRF_PURPOSE) -> bool:
    """Whether the form's token matches this browser's cookie and this customer's page."""
    payload = unsign(_key(settings), purpose, token)
    if payload is None or cookie is None or payload.get("c") != customer_id:
        return False
    return secrets.compare_digest(str(payload.get("n", "")), cookie)
