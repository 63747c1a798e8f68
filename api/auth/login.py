"""The staff login session cookie and the login form's CSRF token."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from fastapi import Request, Response

from partners.crypto import sign, unsign
from partners.settings import Settings

LOGIN_COOKIE = "plp_login"
CSRF_COOKIE = "plp_csrf"
LOGIN_TTL = 8 * 3600
CSRF_TTL = 3600


@dataclass(frozen=True)
class LoginSession:
    user_id: str
    tenant_id: str
    auth_time: int


def _key(settings: Settings) -> str:
    return settings.secret_key.get_secret_value()


def read_login(request: Request, settings: Settings) -> LoginSession | None:
    """The staff member logged in on this browser, if any."""
    raw = request.cookies.get(LOGIN_COOKIE)
    payload = unsign(_key(settings), "login", raw) if raw else None
    if payload is None:
        return None
    try:
        return LoginSession(str(payload["uid"]), str(payload["tid"]), int(payload["at"]))
    except (KeyError, TypeError, ValueError):
        return None


def write_login(response: Response, settings: Settings, login: LoginSession) -> None:
    """Remember the login on this browser (HttpOnly, SameSite=Lax, Secure in production)."""
    value = sign(
        _key(settings), "login", {"uid": login.user_id, "tid": login.tenant_id, "at": login.auth_time}, LOGIN_TTL
    )
    response.set_cookie(
        LOGIN_COOKIE, value, max_age=LOGIN_TTL, httponly=True, samesite="lax", secure=settings.is_production, path="/"
    )


def issue_csrf(response: Response, settings: Settings) -> str:
    """A double-submit CSRF token: a random nonce in a cookie, signed in the form."""
    nonce = secrets.token_urlsafe(16)
    response.set_cookie(
        CSRF_COOKIE, nonce, max_age=CSRF_TTL, httponly=True, samesite="strict", secure=settings.is_production, path="/"
    )
    return sign(_key(settings), "csrf", {"n": nonce}, CSRF_TTL)


def csrf_ok(request: Request, settings: Settings, token: str) -> bool:
    """Whether the form's token matches this browser's CSRF cookie."""
    payload = unsign(_key(settings), "csrf", token)
    nonce = request.cookies.get(CSRF_COOKIE)
    return payload is not None and nonce is not None and secrets.compare_digest(str(payload.get("n", "")), nonce)
