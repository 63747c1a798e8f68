"""An offer as shops send it (the API's offer bodies, and the items of an offer feed), mapped to the domain.

Pydantic models, so that the HTTP API and the offer sync worker read offers the same way.
"""

from __future__ import annotations

from dataclasses import fields

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from partners.offer_rules import Budget, CodeMode, CustomerType, OfferContent, OfferKind, Targeting
from partners.offers import OfferSettings

MONEY = "integer minor units (cents) of `currency`"
_CONTENT_FIELDS = {f.name for f in fields(OfferContent)}


class TargetingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    categories: list[str] = Field(
        min_length=1, max_length=50, description="Taxonomy ids the offer is in; interest targeting uses them"
    )
    price_min: int | None = Field(default=None, description=f"Customers' typical unit price from, {MONEY}")
    price_max: int | None = Field(default=None, description=f"... up to, {MONEY}")
    customer_type: CustomerType = Field(default=CustomerType.any, description="New or returning customers of the host")
    min_lifetime_value: int | None = Field(default=None, description=f"Minimum lifetime value at the host, {MONEY}")
    regions: list[str] = Field(default_factory=list, max_length=250, description="ISO 3166-1 alpha-2; empty: all")
    risk_levels: list[str] = Field(
        default_factory=list,
        max_length=4,
        description="Churn risk at the host: active, cooling, at_risk, lapsed; empty: any",
    )
    lifetime_value_bands: list[str] = Field(
        default_factory=list, max_length=3, description="Lifetime-value band at the host: low, middle, top; empty: any"
    )

    def domain(self) -> Targeting:
        values = self.model_dump()
        lists = ("categories", "regions", "risk_levels", "lifetime_value_bands")
        return Targeting(**{**values, **{name: tuple(getattr(self, name)) for name in lists}})


class BudgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    redemptions: int | None = Field(default=None, description="Total redemptions across partnerships; null: no limit")
    value: int | None = Field(default=None, description=f"Total discount value, {MONEY}; null: no limit")


class CodesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: CodeMode = Field(default=CodeMode.none, description="none, shared (one code) or pool (single-use codes)")
    shared_code: str | None = Field(default=None, max_length=40, description="The code, in shared mode")


class OfferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    landing_url: str = Field(min_length=1, max_length=2000)
    kind: OfferKind
    percent_off: float | None = Field(default=None, description="percent_off (and optionally early_access): 0–100")
    amount_off: int | None = Field(default=None, description=f"amount_off, or the customer's referral bonus: {MONEY}")
    friend_amount_off: int | None = Field(default=None, description=f"referral_bonus: the friend's bonus, {MONEY}")
    currency: str = Field(min_length=3, max_length=3, description="ISO 4217; one the hosts trade in")
    minimum_order: int | None = Field(default=None, description=MONEY)
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = Field(default=None, description="null: open-ended")
    public_sale_starts_at: AwareDatetime | None = Field(
        default=None, description="early_access: when the sale opens to the public (after starts_at)"
    )
    targeting: TargetingIn
    budget: BudgetIn = Field(default_factory=BudgetIn)
    codes: CodesIn = Field(default_factory=CodesIn)

    def content(self) -> OfferContent:
        values = self.model_dump(include=_CONTENT_FIELDS - {"targeting"})
        return OfferContent(**values, targeting=self.targeting.domain())

    def settings(self) -> OfferSettings:
        return OfferSettings(
            Budget(self.budget.redemptions, self.budget.value), self.codes.mode, self.codes.shared_code
        )


class OfferUpsertIn(OfferIn):
    publish_to: list[str] = Field(
        default_factory=list, max_length=100, description="Partnership ids to submit the offer to as well"
    )


class OfferFeedItem(OfferUpsertIn):
    """One offer in a shop's offer feed: the body of `PUT /v1/offers/by-external-id/{id}` with its id."""

    external_id: str = Field(min_length=1, max_length=128, description="Your id of the offer; upserts are by it")
