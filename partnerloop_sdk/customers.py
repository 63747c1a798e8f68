"""Your customers, pseudonymously: registration, orders, privacy notices and consent events."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from partnerloop_sdk.account import iterate
from partnerloop_sdk.models import ConsentResult, Customer, Notice
from partnerloop_sdk.session import ApiSession


@dataclass(frozen=True)
class Recorded:
    """What a write answered, and whether it was new (False: the same record was there already)."""

    body: dict[str, Any]
    created: bool


class Customers:
    """Customers and purchases (`customers:write`)."""

    def __init__(self, api: ApiSession) -> None:
        self._api = api

    def upsert(self, external_id: str, email: str | None = None, store_email: bool = False) -> Customer:
        """Register a customer or replace what is held (the email is kept only as a keyed hash)."""
        body: dict[str, Any] = {"store_email": store_email}
        if email is not None:
            body["email"] = email
        return cast(Customer, self._api.call("PUT", f"/v1/customers/{external_id}", json=body).json())

    def get(self, external_id: str) -> Customer:
        return cast(Customer, self._api.call("GET", f"/v1/customers/{external_id}").json())

    def record_purchase(self, external_id: str, order: dict[str, Any]) -> Recorded:
        """Record an order (`order_id`, `ordered_at`, `currency`, `lines`); the same order again is a no-op."""
        answer = self._api.call("POST", f"/v1/customers/{external_id}/purchases", json=order)
        return Recorded(answer.json(), answer.status_code == 201)

    def profile(self, external_id: str) -> dict[str, Any]:
        """Interests, price bands, spend and lifetime value as derived from the orders."""
        return cast(dict[str, Any], self._api.call("GET", f"/v1/customers/{external_id}/profile").json())


class Consents:
    """Privacy notices and consent events (`consents:write`)."""

    def __init__(self, api: ApiSession) -> None:
        self._api = api

    def publish_notice(
        self,
        key: str,
        text: str,
        purposes: Sequence[str],
        partners: Sequence[str] | str = "all",
        language: str = "en",
        published_at: str | None = None,
    ) -> Notice:
        """Publish the next version of a notice; grants cite the version the customer saw."""
        body: dict[str, Any] = {
            "key": key,
            "language": language,
            "text": text,
            "purposes": list(purposes),
            "partners": partners if isinstance(partners, str) else list(partners),
        }
        if published_at is not None:
            body["published_at"] = published_at
        return cast(Notice, self._api.call("POST", "/v1/consent-notices", json=body).json())

    def notices(self, key: str | None = None) -> Iterator[Notice]:
        """Notice versions, oldest first (of one `key`, if given)."""
        return cast(Iterator[Notice], iterate(self._api, "/v1/consent-notices", {"key": key}))

    def record(self, external_id: str, event: dict[str, Any]) -> ConsentResult:
        """Record a consent event (granted, withdrawn, confirmed); an `event_id` sent again is a no-op."""
        path = f"/v1/customers/{external_id}/consent-events"
        return cast(ConsentResult, self._api.call("POST", path, json=event).json())

    def grant(
        self,
        external_id: str,
        *,
        event_id: str,
        notice_id: str,
        occurred_at: str,
        partner: str = "all",
        purposes: Sequence[str] = ("partner_offers",),
        method: str = "checkbox",
        source: str = "checkout",
    ) -> ConsentResult:
        """The common case: the customer ticked a box under the notice `notice_id`."""
        event = {
            "event_id": event_id,
            "action": "granted",
            "purposes": list(purposes),
            "partner": partner,
            "notice_id": notice_id,
            "method": method,
            "source": source,
            "occurred_at": occurred_at,
        }
        return self.record(external_id, event)

    def withdraw(
        self,
        external_id: str,
        *,
        method: str,
        source: str,
        purposes: Sequence[str] | None = None,
        partner: str = "all",
    ) -> ConsentResult:
        """Withdraw (every purpose for every partner unless narrowed); effective when this returns."""
        body: dict[str, Any] = {"method": method, "source": source, "partner": partner}
        if purposes is not None:
            body["purposes"] = list(purposes)
        path = f"/v1/customers/{external_id}/consents/withdraw"
        return cast(ConsentResult, self._api.call("POST", path, json=body).json())

    def current(self, external_id: str) -> list[dict[str, Any]]:
        """The customer's consent state per purpose and partner."""
        answer = self._api.call("GET", f"/v1/customers/{external_id}/consents").json()
        return cast(list[dict[str, Any]], answer["consents"])
