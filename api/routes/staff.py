"""Staff accounts: list, invite, accept an invitation, change a role or deactivate."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from api.auth.principal import StaffRead, StaffWrite
from api.deps import SessionDep
from api.idempotency import IdempotentRoute
from api.pagination import Page, Paging
from api.routes.tenants import StaffOut, staff_out
from partners import staff, tokens
from partners.scopes import Role

router = APIRouter(prefix="/v1", tags=["staff"], route_class=IdempotentRoute)


class InvitationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=254)
    role: Role


class InvitationOut(BaseModel):
    id: str
    email: str
    role: Role
    expires_at: datetime
    token: str = Field(description="Shown once: send it to the invitee, who accepts with it.")


class AcceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=10, max_length=200)
    password: str = Field(min_length=12, max_length=200)


class StaffChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    active: StrictBool | None = Field(default=None, description="Omit to leave as is; false deactivates")


@router.get("/staff", summary="The organization's staff")
def list_staff(caller: StaffRead, session: SessionDep, paging: Paging) -> Page[StaffOut]:
    rows, more = staff.list_staff(session, caller.tenant_id, paging.after, paging.limit)
    return paging.page([staff_out(u) for u in rows], more, rows[-1].id if rows else None)


@router.post("/staff/invitations", status_code=201, summary="Invite a staff member (owners only)")
def invite(body: InvitationIn, caller: StaffWrite, session: SessionDep) -> InvitationOut:
    issued = staff.invite(session, caller.tenant_id, caller.caller_id, body.email, body.role)
    inv = issued.invitation
    return InvitationOut(id=inv.id, email=inv.email, role=inv.role, expires_at=inv.expires_at, token=issued.token)


@router.post(
    "/invitations/accept",
    status_code=201,
    summary="Accept an invitation and set a password",
    openapi_extra={"security": []},
)
def accept(body: AcceptIn, session: SessionDep) -> StaffOut:
    return staff_out(staff.accept_invitation(session, body.token, body.password))


@router.patch("/staff/{user_id}", summary="Change a staff member's role, or deactivate them")
def change(user_id: str, body: StaffChangeIn, caller: StaffWrite, session: SessionDep) -> StaffOut:
    user = staff.change_role(session, caller.tenant_id, caller.caller_id, user_id, body.role, body.active)
    # Whatever they held was granted under the old role: it goes.
    tokens.revoke_families_of(session, caller.tenant_id, user_id=user.id)
    return staff_out(user)
