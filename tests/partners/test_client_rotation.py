"""Rotating a client's secret hands the new secret to the caller: only someone holding every
scope of the client may do it, or rotation would be a way to gain scopes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlmodel import Session

from partners import scopes as scope_names
from partners.clients import ApiClient, create_client, rotate_secret
from partners.crypto import hash_secret
from partners.errors import Forbidden
from partners.retailers import Tenant


def test_caller_without_all_the_clients_scopes_cannot_rotate(
    session: Session, make_tenant: Callable[..., Tenant]
) -> None:
    tenant = make_tenant()
    issued = create_client(session, tenant.id, "owner's", ["staff:write", "profile:read"], scope_names.ALL, "usr_owner")
    session.commit()
    admin_scopes = frozenset(str(s) for s in scope_names.ROLE_SCOPES[scope_names.Role.admin])
    with pytest.raises(Forbidden) as refused:
        rotate_secret(session, tenant.id, issued.client.id, admin_scopes)
    assert refused.value.param == "client_id"
    assert "staff:write" in refused.value.detail
    session.rollback()
    stored = session.get(ApiClient, (tenant.id, issued.client.id))
    assert stored is not None
    assert stored.secret_hash == hash_secret(issued.secret)


def test_caller_holding_all_the_clients_scopes_rotates(session: Session, make_tenant: Callable[..., Tenant]) -> None:
    tenant = make_tenant()
    issued = create_client(session, tenant.id, "backend", ["profile:read"], scope_names.ALL, "usr_owner")
    rotated = rotate_secret(session, tenant.id, issued.client.id, frozenset({"profile:read", "clients:write"}))
    assert rotated.secret != issued.secret
    assert rotated.client.secret_hash == hash_secret(rotated.secret)
