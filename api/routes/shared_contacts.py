"""Contact sharing: a partner shop receives a customer's email, with that customer's consent to exactly it."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.auth.principal import ContactsRead
from api.deps import SessionDep, SettingsDep
from partners import contact_sharing
from partners.db import utcnow

router = APIRouter(prefix="/v1", tags=["privacy"])


class SharedContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    impression_id: str = Field(min_length=1, max_length=40, description="An impression of your offer ('imp_…')")


class SharedContactOut(BaseModel):
    impression_id: str
    host_tenant_id: str = Field(description="The partner shop whose customer this is")
    email: str
    shared_at: datetime


@router.post(
    "/shared-contacts",
    summary="The email of the customer shown one of your offers, if they agreed to share it with you",
    description=(
        "Answered only while the customer's `partner_contact_sharing` consent names you, the partnership is "
        "active and its agreed terms allow contact sharing; recorded as a disclosure, so you are told of "
        "withdrawals and erasure. Refusals: `unknown_impression` (404), `no_contact_consent`, "
        "`contact_sharing_not_agreed` (403), `no_contact_details` (409)."
    ),
)
def share_contact(
    body: SharedContactIn, caller: ContactsRead, session: SessionDep, settings: SettingsDep
) -> SharedContactOut:
    shared = contact_sharing.share(
        session,
        caller.tenant_id,
        body.impression_id,
        encryption_key=settings.encryption_key.get_secret_value(),
        now=utcnow(),
    )
    return SharedContactOut(
        impression_id=shared.impression_id,
        host_tenant_id=shared.host_tenant_id,
        email=shared.email,
        shared_at=shared.shared_at,
    )
