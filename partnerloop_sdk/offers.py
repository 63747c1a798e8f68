"""Offers: yours (create, upsert by your external id, publish, run) and your partners' (approve, reject)."""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from partnerloop_sdk.account import iterate
from partnerloop_sdk.models import Offer, PartnerOffer
from partnerloop_sdk.session import ApiSession


@dataclass(frozen=True)
class Upserted:
    offer: Offer
    created: bool


class Offers:
    """Your own offers (`offers:read`, `offers:write`). Bodies are as in docs/offers.md."""

    def __init__(self, api: ApiSession) -> None:
        self._api = api

    def create(self, offer: dict[str, Any]) -> Offer:
        """A draft offer."""
        return cast(Offer, self._api.call("POST", "/v1/offers", json=offer).json())

    def upsert(
        self,
        external_id: str,
        offer: dict[str, Any],
        *,
        publish_to: Sequence[str] = (),
        if_match: str | None = None,
        create_only: bool = False,
    ) -> Upserted:
        """Create or replace the offer with your id (idempotent: safe to send again; retried on 429/503).

        `publish_to` submits it to those partnerships; `if_match` (an ETag) replaces only the
        offer you read, `create_only` refuses to replace one (both answer 412 otherwise).
        """
        headers = {}
        if if_match is not None:
            headers["If-Match"] = if_match
        if create_only:
            headers["If-None-Match"] = "*"
        body = {**offer, **({"publish_to": list(publish_to)} if publish_to else {})}
        answer = self._api.call("PUT", f"/v1/offers/by-external-id/{external_id}", json=body, headers=headers)
        return Upserted(cast(Offer, answer.json()), answer.status_code == 201)

    def get(self, offer_id: str) -> Offer:
        return cast(Offer, self._api.call("GET", f"/v1/offers/{offer_id}").json())

    def list(self, state: str | None = None, external_id: str | None = None) -> Iterator[dict[str, Any]]:
        return iterate(self._api, "/v1/offers", {"state": state, "external_id": external_id})

    def update(self, offer_id: str, changes: dict[str, Any], if_match: str | None = None) -> Offer:
        """Change fields of an offer; a published one gets a new version for its hosts to approve."""
        headers = {"If-Match": if_match} if if_match else None
        return cast(Offer, self._api.call("PATCH", f"/v1/offers/{offer_id}", json=changes, headers=headers).json())

    def publish(self, offer_id: str, partnership_ids: Sequence[str]) -> Offer:
        """Submit the latest version to these partnerships; each host approves it before it shows."""
        body = {"partnership_ids": list(partnership_ids)}
        return cast(Offer, self._api.call("POST", f"/v1/offers/{offer_id}/publish", json=body).json())

    def pause(self, offer_id: str) -> Offer:
        return cast(Offer, self._api.call("POST", f"/v1/offers/{offer_id}/pause").json())

    def resume(self, offer_id: str) -> Offer:
        return cast(Offer, self._api.call("POST", f"/v1/offers/{offer_id}/resume").json())

    def archive(self, offer_id: str) -> Offer:
        return cast(Offer, self._api.call("POST", f"/v1/offers/{offer_id}/archive").json())

    def add_codes(self, offer_id: str, codes: Sequence[str]) -> dict[str, Any]:
        """Upload single-use codes to the offer's pool."""
        path = f"/v1/offers/{offer_id}/codes"
        return cast(dict[str, Any], self._api.call("POST", path, json={"codes": list(codes)}).json())

    def generate_codes(self, offer_id: str, count: int, prefix: str = "") -> builtins.list[str]:
        """Have Partnerloop generate `count` single-use codes into the pool; the codes made."""
        path = f"/v1/offers/{offer_id}/codes/generate"
        answer = self._api.call("POST", path, json={"count": count, "prefix": prefix}).json()
        return [str(code) for code in answer["codes"]]


class PartnerOffers:
    """Partners' offers published to you, as host (`offers:read`; `offers:write` to decide)."""

    def __init__(self, api: ApiSession) -> None:
        self._api = api

    def list(self, awaiting_approval: bool | None = None) -> Iterator[PartnerOffer]:
        params = {"awaiting_approval": awaiting_approval}
        return cast(Iterator[PartnerOffer], iterate(self._api, "/v1/partner-offers", params))

    def get(self, offer_id: str) -> PartnerOffer:
        return cast(PartnerOffer, self._api.call("GET", f"/v1/partner-offers/{offer_id}").json())

    def approve(self, offer_id: str, version: int) -> PartnerOffer:
        """Approve the version you read (a 409 if another version is pending by now)."""
        path = f"/v1/partner-offers/{offer_id}/approve"
        return cast(PartnerOffer, self._api.call("POST", path, json={"version": version}).json())

    def reject(self, offer_id: str, version: int, reason: str) -> PartnerOffer:
        path = f"/v1/partner-offers/{offer_id}/reject"
        return cast(PartnerOffer, self._api.call("POST", path, json={"version": version, "reason": reason}).json())
