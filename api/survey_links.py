"""Signed, expiring links to a customer's survey page (the preference-link scheme, its own purpose).

The token carries only the tenant and the link id; the link row holds the customer, the survey
version and the expiry, so an answered or expired link is refused even with a valid signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from partners.crypto import sign, unsign
from partners.settings import Settings

LINK_PURPOSE = "survey-link"
CSRF_PURPOSE = "survey-csrf"
CSRF_COOKIE = "plp_survey_csrf"


@dataclass(frozen=True)
class SurveyLinkHolder:
    tenant_id: str
    link_id: str


def link_url(settings: Settings, tenant_id: str, link_id: str, expires_at: datetime, now: datetime) -> str:
    """The URL of a stored link, signed until the link expires."""
    ttl = max(1, int((expires_at - now).total_seconds()))
    token = sign(settings.secret_key.get_secret_value(), LINK_PURPOSE, {"t": tenant_id, "l": link_id}, ttl)
    return f"{settings.base_url.rstrip('/')}/surveys/{token}"


def read_link(settings: Settings, token: str) -> SurveyLinkHolder | None:
    """Which link a token opens, or None if it is forged, for another purpose, or expired."""
    payload = unsign(settings.secret_key.get_secret_value(), LINK_PURPOSE, token)
    if payload is None or not isinstance(payload.get("t"), str) or not isinstance(payload.get("l"), str):
        return None
    return SurveyLinkHolder(payload["t"], payload["l"])
