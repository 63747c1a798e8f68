"""Access tokens: client credentials renewed before they expire, and staff tokens with rotating refresh tokens.

Both ride on authlib's httpx OAuth2 client, which renews a token `leeway` seconds before it
expires. A lock makes the renewal one-at-a-time: with refresh-token rotation, two threads
refreshing with the same refresh token at once would look like theft and revoke the login.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import authlib.deprecate  # noqa: F401 (installs authlib's "always show" filter, which ours must follow)
import httpx

with warnings.catch_warnings():
    # authlib nudges towards the httpx2 fork; httpx is what we use, and it works.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import OAuth2Client

from partnerloop_sdk.errors import from_response
from partnerloop_sdk.retry import retry_after

DOCS_CLIENT_ID = "partnerloop-docs"
TOKEN_PATH = "/oauth/token"
# Renew this many seconds before expiry, so a token never lapses between our check and the server's.
LEEWAY_SECONDS = 60

TokenSaver = Callable[[dict[str, Any]], None]


class OAuthHttp(OAuth2Client):  # type: ignore[misc]  # authlib ships no type hints
    """An httpx client that carries an access token and renews it one thread at a time."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._token_lock = threading.Lock()
        for hook in ("access_token_response", "refresh_token_response"):
            self.register_compliance_hook(hook, _raise_refusal)

    def ensure_active_token(self, token: Any = None) -> bool:
        with self._token_lock:
            if self.token is None:  # the first call: nothing to renew yet, fetch one
                self.fetch_token()
                return True
            return bool(super().ensure_active_token(self.token))

    def request(
        self, method: str, url: Any, withhold_token: bool = False, auth: Any = httpx.USE_CLIENT_DEFAULT, **kwargs: Any
    ) -> httpx.Response:
        # Token requests themselves pass their own `auth` (the client's credentials): never a bearer token.
        if not withhold_token and auth is httpx.USE_CLIENT_DEFAULT and self.token is None:
            self.ensure_active_token()
        response: httpx.Response = super().request(method, url, withhold_token=withhold_token, auth=auth, **kwargs)
        return response

    def renew(self) -> None:
        """Drop the current token so that the next call gets a fresh one (after a 401)."""
        with self._token_lock:
            if self.metadata.get("grant_type") == "client_credentials":
                self.token = None


def _raise_refusal(response: httpx.Response) -> httpx.Response:
    # authlib would raise its own error without the status; ours carries status, code and detail.
    if response.status_code >= 400:
        response.read()
        raise from_response(response, retry_after(response))
    return response


def client_credentials_http(
    base_url: str,
    client_id: str,
    client_secret: str,
    *,
    scope: str | None,
    transport: httpx.BaseTransport | None,
    timeout: float,
    headers: Mapping[str, str],
) -> OAuthHttp:
    """An httpx client for a shop's backend: asks for a token at first use and again before it expires."""
    return OAuthHttp(
        client_id=client_id,
        client_secret=client_secret,
        token_endpoint_auth_method="client_secret_basic",
        scope=scope,
        token_endpoint=base_url.rstrip("/") + TOKEN_PATH,
        grant_type="client_credentials",
        leeway=LEEWAY_SECONDS,
        base_url=base_url,
        transport=transport,
        timeout=timeout,
        headers=dict(headers),
    )


def staff_http(
    base_url: str,
    token: Mapping[str, Any],
    *,
    on_token: TokenSaver | None,
    transport: httpx.BaseTransport | None,
    timeout: float,
    headers: Mapping[str, str],
) -> OAuthHttp:
    """An httpx client for a staff login: refreshes before expiry; each refresh rotates the refresh token.

    `on_token` receives every new token response: store it, since the refresh token it
    replaces is used up (presenting it again revokes the whole login).
    """

    def saved(new_token: dict[str, Any], refresh_token: str | None = None, access_token: str | None = None) -> None:
        if on_token is not None:
            on_token(dict(new_token))

    return OAuthHttp(
        client_id=DOCS_CLIENT_ID,
        token_endpoint_auth_method="none",
        token=dict(token),
        token_endpoint=base_url.rstrip("/") + TOKEN_PATH,
        update_token=saved,
        leeway=LEEWAY_SECONDS,
        base_url=base_url,
        transport=transport,
        timeout=timeout,
        headers=dict(headers),
    )
