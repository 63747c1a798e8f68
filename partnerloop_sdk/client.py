"""`Partnerloop`: one object per set of credentials, with a typed attribute per part of the API."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, cast

import httpx

from partnerloop_sdk import auth
from partnerloop_sdk.account import Clients, Profile, WebhookEndpoints
from partnerloop_sdk.changes import Changes
from partnerloop_sdk.customers import Consents, Customers
from partnerloop_sdk.exchange import Exchange, Redemptions
from partnerloop_sdk.models import SignUp
from partnerloop_sdk.offers import Offers, PartnerOffers
from partnerloop_sdk.partnerships import Partnerships
from partnerloop_sdk.retry import RetryPolicy
from partnerloop_sdk.session import USER_AGENT, ApiSession
from partnerloop_sdk.uploads import Uploads

DEFAULT_TIMEOUT = 30.0


class Partnerloop:
    """A Partnerloop API client. Build it with `with_client_credentials` (a shop's backend) or
    `with_staff_token` (a staff login); close it, or use it as a context manager."""

    def __init__(self, http: httpx.Client, retry: RetryPolicy | None = None) -> None:
        self.api = ApiSession(http, retry or RetryPolicy())
        self.profile = Profile(self.api)
        self.clients = Clients(self.api)
        self.webhook_endpoints = WebhookEndpoints(self.api)
        self.partnerships = Partnerships(self.api)
        self.offers = Offers(self.api)
        self.partner_offers = PartnerOffers(self.api)
        self.customers = Customers(self.api)
        self.consents = Consents(self.api)
        self.exchange = Exchange(self.api)
        self.redemptions = Redemptions(self.api)
        self.uploads = Uploads(self.api)
        self.changes = Changes(self.api)

    @classmethod
    def with_client_credentials(
        cls,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Partnerloop:
        """For a shop's backend: a token is fetched at first use and renewed a minute before it expires."""
        http = auth.client_credentials_http(
            base_url,
            client_id,
            client_secret,
            scope=scope,
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT},
        )
        return cls(http, retry)

    @classmethod
    def with_staff_token(
        cls,
        base_url: str,
        token: Mapping[str, Any],
        *,
        on_token: auth.TokenSaver | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Partnerloop:
        """For a staff login's tokens: refreshed before expiry; `on_token` gets each rotated token to store."""
        http = auth.staff_http(
            base_url, token, on_token=on_token, transport=transport, timeout=timeout, headers={"User-Agent": USER_AGENT}
        )
        return cls(http, retry)

    @property
    def token(self) -> dict[str, Any] | None:
        """The token in use (None before the first call of a client-credentials client)."""
        current = getattr(self.api.http, "token", None)
        return dict(current) if current is not None else None

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> Partnerloop:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def sign_up(
    base_url: str,
    organization: str,
    email: str,
    password: str,
    *,
    transport: httpx.BaseTransport | None = None,
    retry: RetryPolicy | None = None,
) -> SignUp:
    """Create an organization (tenant) and its owner account; no token needed."""
    with httpx.Client(base_url=base_url, transport=transport, headers={"User-Agent": USER_AGENT}) as http:
        api = ApiSession(http, retry or RetryPolicy())
        body = {"organization": organization, "email": email, "password": password}
        return cast(SignUp, api.call("POST", "/v1/tenants", json=body, ok=(201,)).json())
