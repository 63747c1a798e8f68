"""Factories: build valid rows with sensible defaults; tests override what they care about."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from partners import scopes as scope_names
from partners.clients import create_client
from partners.consent_rules import Purpose
from partners.customers import Customer, upsert_customer
from partners.notices import ConsentNotice, NoticeInput, create_notice
from partners.partnerships import is_active_partner
from partners.retailers import Tenant, create_tenant
from partners.scopes import Role
from partners.settings import Settings
from partners.staff import StaffUser, _hasher

_counter = itertools.count(1)


@pytest.fixture
def make_tenant(session: Session) -> Callable[..., Tenant]:
    def make(name: str | None = None) -> Tenant:
        tenant = create_tenant(session, name or f"Retailer {next(_counter)}")
        session.commit()
        return tenant

    return make


@dataclass
class StaffMember:
    tenant: Tenant
    user: StaffUser
    password: str


@pytest.fixture
def make_staff(session: Session, make_tenant: Callable[..., Tenant]) -> Callable[..., StaffMember]:
    """A staff member with a known password; a new organization unless `tenant` is given."""

    def make(role: Role = Role.owner, tenant: Tenant | None = None, email: str | None = None) -> StaffMember:
        tenant = tenant or make_tenant()
        password = "correct horse battery staple"
        user = StaffUser(
            tenant_id=tenant.id,
            email=email or f"staff{next(_counter)}@shop.example",
            role=role,
            password_hash=_hasher.hash(password),
        )
        session.add(user)
        session.commit()
        return StaffMember(tenant, user, password)

    return make


@dataclass
class Credentials:
    client_id: str
    client_secret: str
    tenant_id: str


@pytest.fixture
def make_api_client(session: Session, make_tenant: Callable[..., Tenant]) -> Callable[..., Credentials]:
    """A confidential API client holding `scopes` (all by default)."""

    def make(scopes: list[str] | None = None, tenant: Tenant | None = None) -> Credentials:
        tenant = tenant or make_tenant()
        wanted = scopes if scopes is not None else sorted(scope_names.ALL)
        issued = create_client(session, tenant.id, "backend", wanted, scope_names.ALL, "test")
        session.commit()
        return Credentials(issued.client.id, issued.secret, tenant.id)

    return make


@pytest.fixture
def token_for(client: TestClient, make_api_client: Callable[..., Credentials]) -> Callable[..., str]:
    """An access token from the real token endpoint (client credentials)."""

    def get(scopes: list[str] | None = None, tenant: Tenant | None = None) -> str:
        creds = make_api_client(scopes, tenant)
        response = client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(creds.client_id, creds.client_secret),
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    return get


# --- customers and consent ----------------------------------------------------------------

NOTICE_PUBLISHED = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def make_customer(session: Session, settings: Settings, make_tenant: Callable[..., Tenant]) -> Callable[..., Customer]:
    """A registered customer of `tenant` (a new tenant by default)."""

    def make(
        tenant: Tenant | None = None,
        external_id: str | None = None,
        email: str | None = None,
        store_email: bool = False,
    ) -> Customer:
        tenant = tenant or make_tenant()
        result = upsert_customer(
            session,
            tenant.id,
            external_id or f"c-{next(_counter)}",
            email=email,
            store_email=store_email,
            hash_key=settings.identity_hash_key.get_secret_value().encode(),
            encryption_key=settings.encryption_key.get_secret_value(),
        )
        session.commit()
        return result.customer

    return make


@pytest.fixture
def make_partner(make_tenant: Callable[..., Tenant], make_partnership: Callable[..., Any]) -> Callable[..., Tenant]:
    """A new retailer in a partnership with `tenant` (active unless `active=False`)."""

    def make(tenant: Tenant, active: bool = True, name: str | None = None) -> Tenant:
        partner = make_tenant(name)
        make_partnership(tenant, partner, active=active)
        return partner

    return make


@pytest.fixture
def make_notice(session: Session) -> Callable[..., ConsentNotice]:
    """A published notice of `tenant`; for all active partners unless `partners` names them."""

    def make(
        tenant: Tenant,
        purposes: tuple[Purpose, ...] = tuple(Purpose),
        partners: tuple[str, ...] | None = None,
        key: str = "checkout",
    ) -> ConsentNotice:
        text = "We would like to show you offers from our partner shops. You can withdraw at any time."
        notice = create_notice(
            session,
            tenant.id,
            NoticeInput(key, "en", text, purposes, partners, NOTICE_PUBLISHED),
            is_active_partner=is_active_partner,
        )
        session.commit()
        return notice

    return make
