"""Sign-up of a retailer (organization + owner) and the caller's own organization."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.auth.principal import ProfileRead
from api.deps import SessionDep
from api.idempotency import IdempotentRoute
from partners import retailers, staff

router = APIRouter(prefix="/v1", tags=["tenants"], route_class=IdempotentRoute)


class SignUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    organization: str = Field(min_length=1, max_length=200, description="The retailer's name")
    email: str = Field(min_length=3, max_length=254, description="The owner's login email")
    password: str = Field(min_length=12, max_length=200, description="At least 12 characters")


class TenantOut(BaseModel):
    id: str
    name: str
    created_at: datetime


class StaffOut(BaseModel):
    id: str
    email: str
    role: str
    active: bool
    created_at: datetime


class SignUpOut(BaseModel):
    tenant: TenantOut
    owner: StaffOut


def tenant_out(tenant: retailers.Tenant) -> TenantOut:
    return TenantOut(id=tenant.id, name=tenant.name, created_at=tenant.created_at)


def staff_out(user: staff.StaffUser) -> StaffOut:
    return StaffOut(id=user.id, email=user.email, role=user.role, active=user.active, created_at=user.created_at)


@router.post(
    "/tenants",
    status_code=201,
    summary="Sign up: a new organization and its owner account",
    openapi_extra={"security": []},
)
def sign_up(body: SignUpIn, session: SessionDep) -> SignUpOut:
    created = staff.sign_up(session, body.organization, body.email, body.password)
    return SignUpOut(tenant=tenant_out(created.tenant), owner=staff_out(created.owner))


@router.get("/tenant", summary="The caller's organization")
def my_tenant(caller: ProfileRead, session: SessionDep) -> TenantOut:
    return tenant_out(retailers.get_tenant(session, caller.tenant_id))
