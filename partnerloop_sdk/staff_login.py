"""A staff login from a script: the authorization code + PKCE flow of /docs, with the login form filled in.

For tools a staff member runs themselves (set-up scripts, the demo, CI), where their own
password is at hand. People log in through /docs; backends use client credentials.
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from partnerloop_sdk.auth import DOCS_CLIENT_ID, TOKEN_PATH, OAuthHttp
from partnerloop_sdk.errors import PartnerloopError

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def log_in(
    base_url: str,
    email: str,
    password: str,
    scope: str = "",
    *,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Log in as staff and return the token response (access token, rotating refresh token, expiry)."""
    base = base_url.rstrip("/")
    redirect_uri = f"{base}/docs/oauth2-redirect"
    verifier = secrets.token_urlsafe(48)
    with OAuthHttp(
        client_id=DOCS_CLIENT_ID,
        token_endpoint_auth_method="none",
        redirect_uri=redirect_uri,
        scope=scope or None,
        code_challenge_method="S256",
        base_url=base,
        transport=transport,
        timeout=timeout,
    ) as browser:
        authorize, state = browser.create_authorization_url(f"{base}/oauth/authorize", code_verifier=verifier)
        next_url = authorize.removeprefix(base)
        page = browser.request("GET", "/login", params={"next": next_url}, withhold_token=True)
        found = _CSRF.search(page.text)
        if page.status_code != 200 or found is None:
            raise PartnerloopError(page.status_code, "login_unavailable", "The login page did not offer a form.")
        form = {"email": email, "password": password, "csrf_token": found.group(1), "next": next_url}
        logged_in = browser.request("POST", "/login", data=form, withhold_token=True)
        if logged_in.status_code != 303:
            reason = "locked for a while (too many attempts)" if logged_in.status_code == 429 else "refused"
            raise PartnerloopError(logged_in.status_code, "login_failed", f"The staff login was {reason}.")
        answer = browser.request("GET", next_url, withhold_token=True)
        location = answer.headers.get("location", "")
        params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        if answer.status_code != 302 or "code" not in params:
            detail = params.get("error_description") or "The authorization endpoint did not issue a code."
            raise PartnerloopError(answer.status_code, params.get("error", "authorization_failed"), detail)
        if params.get("state") != state or params.get("iss", base) != base:
            raise PartnerloopError(400, "authorization_failed", "The code came back with another state or issuer.")
        token: dict[str, Any] = browser.fetch_token(
            base + TOKEN_PATH, authorization_response=location, code_verifier=verifier, state=state
        )
        return dict(token)
