"""Your organization: its profile, API clients and webhook endpoints."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, cast

from partnerloop_sdk.models import (
    ApiClient,
    ApiClientWithSecret,
    Tenant,
    WebhookEndpoint,
    WebhookEndpointWithSecret,
)
from partnerloop_sdk.session import ApiSession


def iterate(api: ApiSession, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Every item of a paginated list, following `next_cursor` page by page."""
    query = dict(params or {})
    query.setdefault("limit", 100)
    while True:
        page = api.call("GET", path, params=query).json()
        yield from page["data"]
        if not page.get("next_cursor"):
            return
        query["cursor"] = page["next_cursor"]


class Profile:
    """The retailer's profile: categories, regions, currencies, brand safety (`profile:*`)."""

    def __init__(self, api: ApiSession) -> None:
        self._api = api

    def tenant(self) -> Tenant:
        """The organization the token acts for."""
        return cast(Tenant, self._api.call("GET", "/v1/tenant").json())

    def get(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._api.call("GET", "/v1/profile").json())

    def put(self, profile: dict[str, Any]) -> dict[str, Any]:
        """Describe the retailer (the whole profile; see PUT /v1/profile)."""
        return cast(dict[str, Any], self._api.call("PUT", "/v1/profile", json=profile).json())


class Clients:
    """API clients for client credentials (`clients:write`, staff owners and admins)."""

    def __init__(self, api: ApiSession) -> None:
        self._api = api

    def create(self, name: str, scopes: Sequence[str]) -> ApiClientWithSecret:
        """A new confidential client; its `client_secret` is shown only in this answer."""
        body = {"name": name, "scopes": list(scopes)}
        return cast(ApiClientWithSecret, self._api.call("POST", "/v1/clients", json=body).json())

    def list(self) -> Iterator[ApiClient]:
        return cast(Iterator[ApiClient], iterate(self._api, "/v1/clients"))

    def rotate_secret(self, client_id: str) -> ApiClientWithSecret:
        """A new secret; the old one and every token issued with it stop working at once."""
        return cast(ApiClientWithSecret, self._api.call("POST", f"/v1/clients/{client_id}/rotate-secret").json())

    def revoke(self, client_id: str) -> None:
        self._api.call("DELETE", f"/v1/clients/{client_id}")


class WebhookEndpoints:
    """Where Partnerloop POSTs your events (`webhooks:write`)."""

    def __init__(self, api: ApiSession) -> None:
        self._api = api

    def create(self, url: str, events: Sequence[str], description: str = "") -> WebhookEndpointWithSecret:
        """Register an endpoint; keep the `secret` (`whsec_…`) of the answer: it is shown only once."""
        body = {"url": url, "events": list(events), "description": description}
        return cast(WebhookEndpointWithSecret, self._api.call("POST", "/v1/webhook-endpoints", json=body).json())

    def list(self) -> Iterator[WebhookEndpoint]:
        return cast(Iterator[WebhookEndpoint], iterate(self._api, "/v1/webhook-endpoints"))

    def get(self, endpoint_id: str) -> WebhookEndpoint:
        return cast(WebhookEndpoint, self._api.call("GET", f"/v1/webhook-endpoints/{endpoint_id}").json())

    def update(self, endpoint_id: str, **changes: Any) -> WebhookEndpoint:
        """Change `url`, `events`, `description`, or `enabled`."""
        path = f"/v1/webhook-endpoints/{endpoint_id}"
        return cast(WebhookEndpoint, self._api.call("PATCH", path, json=changes).json())

    def rotate_secret(self, endpoint_id: str, overlap_seconds: int = 86_400) -> WebhookEndpointWithSecret:
        """A new secret; the old one keeps signing beside it for `overlap_seconds`."""
        path = f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret"
        answer = self._api.call("POST", path, json={"overlap_seconds": overlap_seconds})
        return cast(WebhookEndpointWithSecret, answer.json())

    def deliveries(self, endpoint_id: str, status: str | None = None) -> Iterator[dict[str, Any]]:
        """The delivery log, each delivery with its attempts."""
        return iterate(self._api, f"/v1/webhook-endpoints/{endpoint_id}/deliveries", {"status": status})

    def replay_since(self, endpoint_id: str, since: str, until: str | None = None) -> int:
        """Queue again every event of the window; the number of deliveries queued."""
        body = {"since": since, **({"until": until} if until else {})}
        return int(
            self._api.call("POST", f"/v1/webhook-endpoints/{endpoint_id}/replay", json=body).json()["deliveries"]
        )

    def delete(self, endpoint_id: str) -> None:
        self._api.call("DELETE", f"/v1/webhook-endpoints/{endpoint_id}")
