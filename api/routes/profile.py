"""The retailer's own profile, and the shared category taxonomy it describes itself with."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from api.auth.principal import ProfileRead, ProfileWrite
from api.deps import SessionDep
from api.etags import ConditionalRoute
from partners import profiles, serving
from partners.taxonomy import Category, load_taxonomy

router = APIRouter(prefix="/v1", tags=["profile"], route_class=ConditionalRoute)


class ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str = Field(min_length=1, max_length=200)
    website: str = Field(min_length=1, max_length=500, pattern=r"^https?://")
    description: str = Field(default="", max_length=4000)
    categories: dict[str, float] = Field(description="Taxonomy ids with their share of sales (0–1, summing to ≤ 1)")
    regions: list[str] = Field(min_length=1, max_length=250, description="ISO 3166-1 alpha-2 codes")
    currencies: list[str] = Field(min_length=1, max_length=50, description="ISO 4217 codes")
    price_positioning: Literal["budget", "mid", "premium"]
    audience_notes: str = Field(default="", max_length=2000)
    blocked_categories: list[str] = Field(
        default_factory=list, max_length=200, description="Categories never promoted to or by this shop"
    )
    discoverable: StrictBool = True
    overlap_opt_in: StrictBool = Field(default=False, description="Allow audience-overlap estimates with partners")


class ProfileOut(ProfileIn):
    tenant_id: str
    updated_at: datetime


class CategoryOut(BaseModel):
    id: str
    name: str
    parent: str | None
    path: str
    leaf: bool


class CategoryDetail(CategoryOut):
    children: list[CategoryOut]


class TaxonomyPage(BaseModel):
    version: str
    data: list[CategoryOut]


def profile_out(profile: profiles.RetailerProfile) -> ProfileOut:
    return ProfileOut.model_validate(profile, from_attributes=True)


def _category(category: Category) -> CategoryOut:
    tree = load_taxonomy()
    return CategoryOut(
        id=category.id,
        name=category.name,
        parent=category.parent,
        path=tree.label(category.id),
        leaf=tree.is_leaf(category.id),
    )


@router.get("/profile", summary="The caller's retailer profile")
def get_profile(caller: ProfileRead, session: SessionDep) -> ProfileOut:
    return profile_out(profiles.get_profile(session, caller.tenant_id))


@router.put("/profile", summary="Describe the retailer: categories, regions, currencies, brand safety")
def put_profile(body: ProfileIn, caller: ProfileWrite, session: SessionDep) -> ProfileOut:
    data = profiles.ProfileInput(**body.model_dump())
    return profile_out(serving.save_profile(session, caller.tenant_id, data))


@router.get("/taxonomy", summary="Top-level categories of the shared taxonomy")
def taxonomy_roots(caller: ProfileRead) -> TaxonomyPage:
    tree = load_taxonomy()
    return TaxonomyPage(version=tree.version, data=[_category(c) for c in tree.roots()])


@router.get("/taxonomy/search", summary="Find categories by name")
def taxonomy_search(
    caller: ProfileRead,
    q: Annotated[str, Query(min_length=1, max_length=100)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> TaxonomyPage:
    tree = load_taxonomy()
    return TaxonomyPage(version=tree.version, data=[_category(c) for c in tree.search(q, limit)])


@router.get("/taxonomy/{category_id}", summary="One category with its children")
def taxonomy_node(category_id: str, caller: ProfileRead) -> CategoryDetail:
    tree = load_taxonomy()
    node = _category(tree.get(category_id))
    return CategoryDetail(**node.model_dump(), children=[_category(c) for c in tree.children(category_id)])
