"""The exchange (which partner offers to show a customer now) and redemptions (orders that used them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from partnerloop_sdk.models import ExchangeAnswer, Redemption
from partnerloop_sdk.session import ApiSession


class Exchange:
    """`exchange:read`: asked by the hosting shop, e.g. from its order confirmation page."""

    def __init__(self, api: ApiSession) -> None:
        self._api = api

    def offers_for(
        self,
        customer_external_id: str,
        placement: str = "order_confirmation",
        *,
        limit: int = 3,
        cart_categories: Sequence[str] = (),
        region: str | None = None,
        one_per_partner: bool = True,
        dry_run: bool = False,
        idempotency_key: str | None = None,
    ) -> ExchangeAnswer:
        """The offers to show, each with its code and impression id (recorded unless `dry_run`).

        Pass your own `idempotency_key` (say, the order id and placement) to get the same
        answer and codes back when the page is reloaded.
        """
        body: dict[str, Any] = {
            "customer_external_id": customer_external_id,
            "placement": placement,
            "limit": limit,
            "cart_categories": list(cart_categories),
            "one_per_partner": one_per_partner,
            "dry_run": dry_run,
        }
        if region is not None:
            body["region"] = region
        answer = self._api.call("POST", "/v1/exchange", json=body, idempotency_key=idempotency_key)
        return cast(ExchangeAnswer, answer.json())


@dataclass(frozen=True)
class RecordedRedemption:
    redemption: Redemption
    created: bool  # False: this order was reported before with the same details


class Redemptions:
    """`redemptions:write`: reported by the offering shop when its customer orders with a partner's code."""

    def __init__(self, api: ApiSession) -> None:
        self._api = api

    def record(
        self,
        order_id: str,
        order_value: int,
        currency: str,
        *,
        code: str | None = None,
        impression_id: str | None = None,
        redeemed_at: str | None = None,
    ) -> RecordedRedemption:
        """Report the order; refusals raise `PartnerloopError` (`code_already_redeemed`, `unknown_code`, …)."""
        body: dict[str, Any] = {"order_id": order_id, "order_value": order_value, "currency": currency}
        for name, value in (("code", code), ("impression_id", impression_id), ("redeemed_at", redeemed_at)):
            if value is not None:
                body[name] = value
        answer = self._api.call("POST", "/v1/redemptions", json=body)
        return RecordedRedemption(cast(Redemption, answer.json()), answer.status_code == 201)

    def get(self, redemption_id: str) -> Redemption:
        return cast(Redemption, self._api.call("GET", f"/v1/redemptions/{redemption_id}").json())

    def reverse(self, redemption_id: str, reason: str | None = None) -> Redemption:
        """Record a refund: the commission is netted in both ledgers (again: no change)."""
        body = {"reason": reason} if reason is not None else {}
        path = f"/v1/redemptions/{redemption_id}/reverse"
        return cast(Redemption, self._api.call("POST", path, json=body).json())
