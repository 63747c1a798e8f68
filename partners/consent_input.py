"""The consent event as callers send it: one body for the single route and the bulk upload.

Lives in the domain (as `partners.offer_input` does) so both readers validate alike.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, IPvAnyAddress, WithJsonSchema

from partners.consent import ConsentInput, RequestOrigin
from partners.consent_rules import Action, Method, Purpose, Source

# Documented as the standard formats (pydantic's own "ipvanyaddress" is one no client knows).
IpAddress = Annotated[
    IPvAnyAddress,
    WithJsonSchema({"anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}]}),
]


class OriginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ip: IpAddress | None = None
    user_agent: str | None = Field(default=None, max_length=500)
    page_url: str | None = Field(default=None, max_length=2000)

    def domain(self) -> RequestOrigin:
        """The origin as the ledger keeps it."""
        return RequestOrigin(str(self.ip) if self.ip else None, self.user_agent, self.page_url)


def origin_of(origin: OriginIn | None) -> RequestOrigin:
    """The request origin, empty when none was sent."""
    return origin.domain() if origin is not None else RequestOrigin()


class ConsentEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: str = Field(min_length=1, max_length=100, description="Your id; sending it again is a no-op")
    action: Action
    purposes: list[Purpose] | None = Field(default=None, min_length=1, max_length=len(Purpose))
    partner: str | None = Field(default=None, max_length=40, description='A partner tenant id, or "all"')
    notice_id: str | None = Field(default=None, max_length=40, description="Required for grants")
    confirms: str | None = Field(default=None, max_length=100, description="For confirmations: the grant's event_id")
    method: Method
    source: Source
    occurred_at: AwareDatetime
    origin: OriginIn | None = None

    def domain(self) -> ConsentInput:
        """The event as `partners.consent.record_event` takes it."""
        return ConsentInput(
            event_id=self.event_id,
            action=self.action,
            method=self.method,
            source=self.source,
            occurred_at=self.occurred_at,
            purposes=tuple(self.purposes or ()),
            partner=self.partner,
            notice_id=self.notice_id,
            confirms=self.confirms,
            origin=origin_of(self.origin),
        )
