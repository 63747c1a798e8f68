"""Tenants: the retailers' organizations. Everything a tenant owns carries its id."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, Session, SQLModel

from partners.db import UTCDateTime, utcnow
from partners.errors import NotFound
from partners.ids import new_id


class Tenant(SQLModel, table=True):
    __tablename__ = "tenants"

    id: str = Field(default_factory=lambda: new_id("ten"), primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def create_tenant(session: Session, name: str) -> Tenant:
    """A new, empty organization."""
    tenant = Tenant(name=name.strip())
    session.add(tenant)
    session.flush()
    return tenant


def get_tenant(session: Session, tenant_id: str) -> Tenant:
    """The tenant itself; callers only ever pass their own id."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"No tenant with id '{tenant_id}'.", param="tenant_id")
    return tenant
