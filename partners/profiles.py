"""Retailer profiles: what a shop sells, where, at what price, and what it never promotes."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, Session, SQLModel, col, select

from partners.db import UTCDateTime, utcnow
from partners.errors import Invalid, NotFound
from partners.matching import PricePositioning, RetailerFacts
from partners.taxonomy import load_taxonomy

_REGION = re.compile(r"^[A-Z]{2}$")  # ISO 3166-1 alpha-2
_CURRENCY = re.compile(r"^[A-Z]{3}$")  # ISO 4217


class RetailerProfile(SQLModel, table=True):
    __tablename__ = "retailer_profiles"

    tenant_id: str = Field(primary_key=True, max_length=40, foreign_key="tenants.id", ondelete="CASCADE")
    display_name: str = Field(max_length=200)
    website: str = Field(max_length=500)
    description: str = Field(default="", max_length=4000)
    categories: dict[str, float] = Field(default_factory=dict, sa_type=JSON)
    regions: list[str] = Field(default_factory=list, sa_type=JSON)
    currencies: list[str] = Field(default_factory=list, sa_type=JSON)
    price_positioning: str = Field(max_length=10)
    audience_notes: str = Field(default="", max_length=2000)
    blocked_categories: list[str] = Field(default_factory=list, sa_type=JSON)
    discoverable: bool = True
    overlap_opt_in: bool = False
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


@dataclass(frozen=True)
class ProfileInput:
    display_name: str
    website: str
    description: str
    categories: Mapping[str, float]
    regions: Sequence[str]
    currencies: Sequence[str]
    price_positioning: PricePositioning
    audience_notes: str
    blocked_categories: Sequence[str]
    discoverable: bool
    overlap_opt_in: bool


def _validated(data: ProfileInput) -> dict[str, Any]:
    tree = load_taxonomy()
    tree.validate_ids(data.categories, param="categories")
    tree.validate_ids(data.blocked_categories, param="blocked_categories")
    if not data.categories:
        raise Invalid("List at least one category you sell, with its share of sales.", param="categories")
    for region in data.regions:
        if not _REGION.match(region):
            raise Invalid(f"'{region}' is not an ISO 3166-1 alpha-2 country code.", param="regions")
    for currency in data.currencies:
        if not _CURRENCY.match(currency):
            raise Invalid(f"'{currency}' is not an ISO 4217 currency code.", param="currencies")
    sold_and_blocked = sorted(set(data.categories) & set(data.blocked_categories))
    if sold_and_blocked:
        raise Invalid(f"You sell '{sold_and_blocked[0]}' and block it at once.", param="blocked_categories")
    values = dict(data.__dict__)
    values.update(
        categories=dict(data.categories),
        regions=sorted(set(data.regions)),
        currencies=sorted(set(data.currencies)),
        blocked_categories=sorted(set(data.blocked_categories)),
    )
    # RetailerFacts checks shares (each 0..1, summing to at most 1).
    RetailerFacts("check", data.display_name, values["categories"], frozenset(), frozenset(), data.price_positioning)
    return values


def save_profile(session: Session, tenant_id: str, data: ProfileInput) -> RetailerProfile:
    """Create or replace the tenant's profile."""
    values = _validated(data)
    profile = session.get(RetailerProfile, tenant_id) or RetailerProfile(tenant_id=tenant_id, **values)
    for name, value in values.items():
        setattr(profile, name, value)
    profile.updated_at = utcnow()
    session.add(profile)
    session.flush()
    return profile


def get_profile(session: Session, tenant_id: str) -> RetailerProfile:
    """The tenant's profile; NotFound until it has described itself."""
    profile = session.get(RetailerProfile, tenant_id)
    if profile is None:
        raise NotFound("This retailer has no profile yet; PUT /v1/profile first.", param="profile")
    return profile


def find_profile(session: Session, tenant_id: str) -> RetailerProfile | None:
    """The tenant's profile, or None."""
    return session.get(RetailerProfile, tenant_id)


def discoverable_profiles(session: Session, except_tenant: str) -> Sequence[RetailerProfile]:
    """Every profile shown in discovery, but the caller's own."""
    query = select(RetailerProfile).where(
        col(RetailerProfile.discoverable).is_(True), col(RetailerProfile.tenant_id) != except_tenant
    )
    return session.exec(query).all()


def facts(profile: RetailerProfile) -> RetailerFacts:
    """What matching needs from a profile."""
    positioning: PricePositioning = profile.price_positioning  # type: ignore[assignment]
    return RetailerFacts(
        tenant_id=profile.tenant_id,
        display_name=profile.display_name,
        categories=dict(profile.categories),
        regions=frozenset(profile.regions),
        currencies=frozenset(profile.currencies),
        price_positioning=positioning,
        blocked_categories=frozenset(profile.blocked_categories),
    )
