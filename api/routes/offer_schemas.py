"""Request and response bodies of the offer routes, and their mapping to the domain's types.

The offer input bodies live in `partners.offer_input` (the offer sync worker reads them too).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from partners import offer_views, offers
from partners.offer_input import BudgetIn, CodesIn, TargetingIn
from partners.offer_rules import Approval, Budget, CustomerType, OfferKind

_REQUIRED = ("title", "description", "landing_url", "kind", "currency", "starts_at", "targeting", "budget", "codes")


def _omit_but_never_null(schema: dict[str, Any]) -> None:
    # Python needs None for "not sent"; the document must not offer null, which the validator refuses.
    for name in _REQUIRED:
        prop = schema["properties"][name]
        prop.pop("default", None)
        options = [option for option in prop.pop("anyOf", []) if option.get("type") != "null"]
        if len(options) == 1:
            prop.update(options[0])
        elif options:
            prop["anyOf"] = options


class OfferPatch(BaseModel):
    """Only the fields sent change; `targeting`, `budget` and `codes` are replaced as a whole."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_omit_but_never_null)
    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    landing_url: str | None = Field(default=None, min_length=1, max_length=2000)
    kind: OfferKind | None = None
    percent_off: float | None = None
    amount_off: int | None = None
    friend_amount_off: int | None = None
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    minimum_order: int | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    public_sale_starts_at: AwareDatetime | None = None
    targeting: TargetingIn | None = None
    budget: BudgetIn | None = None
    codes: CodesIn | None = None

    @field_validator(*_REQUIRED, mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out, but not null")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields sent, as the domain's `offer_actions.edit` takes them."""
        sent = self.model_fields_set
        changes: dict[str, Any] = {name: getattr(self, name) for name in sent - {"targeting", "budget", "codes"}}
        if self.targeting is not None:
            changes["targeting"] = self.targeting.domain()
        if self.budget is not None:
            changes["budget"] = Budget(self.budget.redemptions, self.budget.value)
        if self.codes is not None:
            changes["code_mode"], changes["shared_code"] = self.codes.mode, self.codes.shared_code
        return changes


class TargetingOut(BaseModel):
    categories: list[str]
    price_min: int | None
    price_max: int | None
    customer_type: CustomerType
    min_lifetime_value: int | None
    regions: list[str]
    risk_levels: list[str]
    lifetime_value_bands: list[str]


class VersionOut(BaseModel):
    version: int
    id: str
    title: str
    description: str
    landing_url: str
    kind: OfferKind
    percent_off: float | None
    amount_off: int | None
    friend_amount_off: int | None
    currency: str
    minimum_order: int | None
    starts_at: datetime
    ends_at: datetime | None
    public_sale_starts_at: datetime | None
    targeting: TargetingOut
    created_at: datetime


def version_out(row: offers.OfferVersion) -> VersionOut:
    content = offers.content_of(row)
    targeting = content.targeting
    return VersionOut(
        version=row.version,
        id=row.id,
        title=content.title,
        description=content.description,
        landing_url=content.landing_url,
        kind=content.kind,
        percent_off=content.percent_off,
        amount_off=content.amount_off,
        friend_amount_off=content.friend_amount_off,
        currency=content.currency,
        minimum_order=content.minimum_order,
        starts_at=content.starts_at,
        ends_at=content.ends_at,
        public_sale_starts_at=content.public_sale_starts_at,
        targeting=TargetingOut(
            categories=list(targeting.categories),
            price_min=targeting.price_min,
            price_max=targeting.price_max,
            customer_type=targeting.customer_type,
            min_lifetime_value=targeting.min_lifetime_value,
            regions=list(targeting.regions),
            risk_levels=list(targeting.risk_levels),
            lifetime_value_bands=list(targeting.lifetime_value_bands),
        ),
        created_at=row.created_at,
    )


class PlacementOut(BaseModel):
    partnership_id: str
    partner_tenant_id: str
    approval: Approval
    pending_version: int | None = Field(description="The version awaiting the partner's approval")
    serving_version: int | None = Field(description="The approved version that serves")
    rejected_version: int | None
    rejection_reason: str | None
    serving_status: str | None = Field(description="'live', or why the approved version does not serve")
    live: bool = Field(description="Shown to the partner's customers now")
    submitted_at: datetime | None
    decided_at: datetime | None


def placement_out(view: offer_views.PlacementView) -> PlacementOut:
    p = view.placement
    return PlacementOut(
        partnership_id=p.partnership_id,
        partner_tenant_id=p.partner_tenant_id,
        approval=view.approval,
        pending_version=p.pending_version,
        serving_version=p.serving_version,
        rejected_version=p.rejected_version,
        rejection_reason=p.rejection_reason,
        serving_status=view.serving_status,
        live=view.live,
        submitted_at=p.submitted_at,
        decided_at=p.decided_at,
    )
