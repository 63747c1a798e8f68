"""Partnerships: propose with terms, accept the terms you read, pause, resume, end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from partnerloop_sdk.account import iterate
from partnerloop_sdk.errors import PartnerloopError
from partnerloop_sdk.models import Partnership, PartnershipDetail
from partnerloop_sdk.session import ApiSession


class Partnerships:
    """`partners:read` to read, `partnerships:write` to act."""

    def __init__(self, api: ApiSession) -> None:
        self._api = api

    def propose(self, partner_tenant_id: str, terms: dict[str, Any]) -> PartnershipDetail:
        """Propose a partnership with terms (see docs/partnerships.md for the fields)."""
        body = {"partner_tenant_id": partner_tenant_id, "terms": terms}
        return cast(PartnershipDetail, self._api.call("POST", "/v1/partnerships", json=body).json())

    def get(self, partnership_id: str) -> PartnershipDetail:
        return cast(PartnershipDetail, self._api.call("GET", f"/v1/partnerships/{partnership_id}").json())

    def list(self, state: str | None = None) -> Iterator[Partnership]:
        return cast(Iterator[Partnership], iterate(self._api, "/v1/partnerships", {"state": state}))

    def accept(self, partnership_id: str, terms_version: int, agreement_sha256: str) -> PartnershipDetail:
        """Accept the pending terms, naming the version and the agreement you read."""
        body = {"terms_version": terms_version, "agreement_sha256": agreement_sha256}
        path = f"/v1/partnerships/{partnership_id}/accept"
        return cast(PartnershipDetail, self._api.call("POST", path, json=body).json())

    def accept_pending(self, partnership_id: str) -> PartnershipDetail:
        """Read the pending terms and accept exactly them (for scripts; people should read them first)."""
        pending = self.get(partnership_id)["pending_terms"]
        if pending is None:
            raise PartnerloopError(409, "conflict", "No terms await an answer on this partnership.")
        return self.accept(partnership_id, pending["version"], pending["agreement_sha256"])

    def counter(self, partnership_id: str, terms: dict[str, Any]) -> PartnershipDetail:
        path = f"/v1/partnerships/{partnership_id}/counter"
        return cast(PartnershipDetail, self._api.call("POST", path, json={"terms": terms}).json())

    def _act(self, partnership_id: str, action: str) -> PartnershipDetail:
        return cast(PartnershipDetail, self._api.call("POST", f"/v1/partnerships/{partnership_id}/{action}").json())

    def decline(self, partnership_id: str) -> PartnershipDetail:
        return self._act(partnership_id, "decline")

    def pause(self, partnership_id: str) -> PartnershipDetail:
        return self._act(partnership_id, "pause")

    def resume(self, partnership_id: str) -> PartnershipDetail:
        return self._act(partnership_id, "resume")

    def end(self, partnership_id: str) -> PartnershipDetail:
        return self._act(partnership_id, "end")
