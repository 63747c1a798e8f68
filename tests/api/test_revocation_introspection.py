"""Token revocation (RFC 7009) and introspection (RFC 7662)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import Session

from api.auth import access_tokens
from partners.retailers import Tenant
from tests.factories import Credentials, StaffMember
from tests.flows import (
    DOCS_CLIENT,
    active_signing_key,
    bearer,
    client_credentials,
    jwt_parts,
    refresh,
    staff_tokens,
)

ME = "/v1/tenant"


def cc_token(client: TestClient, creds: Credentials) -> str:
    response = client_credentials(client, creds.client_id, creds.client_secret)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def revoke(client: TestClient, token: str, auth: Credentials | None = None, **extra: str) -> Response:
    data = {"token": token, **extra}
    if auth is None:
        return client.post("/oauth/revoke", data={**data, "client_id": DOCS_CLIENT})
    return client.post("/oauth/revoke", data=data, auth=(auth.client_id, auth.client_secret))


def introspect(client: TestClient, token: str, auth: Credentials) -> dict[str, Any]:
    response = client.post("/oauth/introspect", data={"token": token}, auth=(auth.client_id, auth.client_secret))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


# Revocation


def test_revoking_a_refresh_token_kills_its_family(client: TestClient, make_staff: Callable[..., StaffMember]) -> None:
    owner = make_staff()
    first = staff_tokens(client, owner.user.email, owner.password)
    second = refresh(client, first["refresh_token"]).json()
    assert client.get(ME, headers=bearer(second["access_token"])).status_code == 200

    response = revoke(client, second["refresh_token"], token_type_hint="refresh_token")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    # Every token of the family, issued before or after the one revoked, is dead.
    assert client.get(ME, headers=bearer(second["access_token"])).status_code == 401
    assert client.get(ME, headers=bearer(first["access_token"])).status_code == 401
    assert refresh(client, second["refresh_token"]).json()["error"] == "invalid_grant"


def test_revoking_an_access_token_kills_its_family(client: TestClient, make_staff: Callable[..., StaffMember]) -> None:
    owner = make_staff()
    tokens = staff_tokens(client, owner.user.email, owner.password)
    assert revoke(client, tokens["access_token"], token_type_hint="access_token").status_code == 200
    assert client.get(ME, headers=bearer(tokens["access_token"])).status_code == 401
    assert refresh(client, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_revoking_leaves_other_logins_alone(client: TestClient, make_staff: Callable[..., StaffMember]) -> None:
    owner = make_staff()
    laptop = staff_tokens(client, owner.user.email, owner.password)
    phone = staff_tokens(client, owner.user.email, owner.password)
    assert revoke(client, laptop["refresh_token"]).status_code == 200
    assert client.get(ME, headers=bearer(laptop["access_token"])).status_code == 401
    assert client.get(ME, headers=bearer(phone["access_token"])).status_code == 200


def test_confidential_client_revokes_its_own_token(
    client: TestClient, make_api_client: Callable[..., Credentials]
) -> None:
    creds = make_api_client(["profile:read"])
    token = cc_token(client, creds)
    assert revoke(client, token, creds).status_code == 200
    assert client.get(ME, headers=bearer(token)).status_code == 401
    # The client itself still works: a new token is fine.
    assert client.get(ME, headers=bearer(cc_token(client, creds))).status_code == 200


@pytest.mark.parametrize("unknown", ["plp_rt_unknown", "not-a-token", "a.b.c"])
def test_revoking_an_unknown_token_answers_200(
    client: TestClient, make_api_client: Callable[..., Credentials], unknown: str
) -> None:
    creds = make_api_client()
    response = revoke(client, unknown, creds)
    assert response.status_code == 200
    assert response.json() == {}


def test_a_client_cannot_revoke_another_clients_token(
    client: TestClient, make_api_client: Callable[..., Credentials], make_tenant: Callable[..., Tenant]
) -> None:
    tenant = make_tenant()
    victim = make_api_client(["profile:read"], tenant)
    neighbour = make_api_client(["profile:read"], tenant)
    stranger = make_api_client(["profile:read"])
    token = cc_token(client, victim)
    for attacker in (neighbour, stranger):
        response = revoke(client, token, attacker)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
    # The public docs client (no secret) cannot revoke it either.
    assert revoke(client, token).status_code == 400
    assert client.get(ME, headers=bearer(token)).status_code == 200


def test_a_client_cannot_revoke_a_staff_members_token(
    client: TestClient, make_staff: Callable[..., StaffMember], make_api_client: Callable[..., Credentials]
) -> None:
    owner = make_staff()
    tokens = staff_tokens(client, owner.user.email, owner.password)
    other = make_api_client(tenant=owner.tenant)
    assert revoke(client, tokens["refresh_token"], other).status_code == 400
    assert client.get(ME, headers=bearer(tokens["access_token"])).status_code == 200


def test_revocation_needs_a_client(client: TestClient, token_for: Callable[..., str]) -> None:
    token = token_for(["profile:read"])
    response = client.post("/oauth/revoke", data={"token": token})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    wrong_secret = client.post(
        "/oauth/revoke", data={"token": token}, auth=(jwt_parts(token)[1]["client_id"], "plp_cs_wrong")
    )
    assert wrong_secret.status_code == 401
    assert client.get(ME, headers=bearer(token)).status_code == 200


def test_a_confidential_client_cannot_pose_as_public(
    client: TestClient, make_api_client: Callable[..., Credentials]
) -> None:
    creds = make_api_client(["profile:read"])
    token = cc_token(client, creds)
    # Its id without its secret, as a public client would authenticate.
    response = client.post("/oauth/revoke", data={"token": token, "client_id": creds.client_id})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert client.get(ME, headers=bearer(token)).status_code == 200


# Introspection


def test_introspection_needs_client_authentication(client: TestClient, token_for: Callable[..., str]) -> None:
    token = token_for(["profile:read"])
    for response in (
        client.post("/oauth/introspect", data={"token": token}),
        client.post("/oauth/introspect", data={"token": token, "client_id": DOCS_CLIENT}),
        client.post("/oauth/introspect", data={"token": token}, auth=(jwt_parts(token)[1]["client_id"], "wrong")),
        client.post("/oauth/introspect", data={"token": token}, headers=bearer(token)),
    ):
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_client"
        assert "active" not in response.json()


def test_active_access_token(client: TestClient, make_api_client: Callable[..., Credentials]) -> None:
    creds = make_api_client(["offers:read", "profile:read"])
    token = cc_token(client, creds)
    claims = jwt_parts(token)[1]
    body = introspect(client, token, creds)
    assert body["active"] is True
    assert body["scope"] == "offers:read profile:read"
    assert body["client_id"] == creds.client_id
    assert body["sub"] == creds.client_id
    assert body["exp"] == claims["exp"]
    assert body["iss"] == "http://testserver"
    assert body["token_type"] == "access_token"


def test_active_staff_tokens(
    client: TestClient, make_staff: Callable[..., StaffMember], make_api_client: Callable[..., Credentials]
) -> None:
    owner = make_staff()
    tokens = staff_tokens(client, owner.user.email, owner.password, "offers:read")
    resource = make_api_client(tenant=owner.tenant)
    access = introspect(client, tokens["access_token"], resource)
    assert access["active"] is True
    assert access["sub"] == owner.user.id
    assert access["client_id"] == DOCS_CLIENT
    assert access["scope"] == "offers:read"
    refresh_body = introspect(client, tokens["refresh_token"], resource)
    assert refresh_body["active"] is True
    assert refresh_body["token_type"] == "refresh_token"
    assert refresh_body["sub"] == owner.user.id


def test_revoked_expired_and_garbage_tokens_are_just_inactive(
    app: FastAPI,
    session: Session,
    client: TestClient,
    make_staff: Callable[..., StaffMember],
    make_api_client: Callable[..., Credentials],
) -> None:
    owner = make_staff()
    resource = make_api_client(tenant=owner.tenant)
    rotated = staff_tokens(client, owner.user.email, owner.password)
    refresh(client, rotated["refresh_token"])  # now used: presenting it again would be reuse
    revoked = staff_tokens(client, owner.user.email, owner.password)
    assert revoke(client, revoked["refresh_token"]).status_code == 200

    live = jwt_parts(cc_token(client, resource))[1]
    now = int(time.time())
    expired = access_tokens.encode(
        active_signing_key(app, session),
        "http://testserver",
        access_tokens.AccessClaims(
            tenant_id=live["tid"],
            client_id=live["client_id"],
            subject=live["sub"],
            user_id=None,
            family_id=live["sid"],
            scopes=frozenset({"profile:read"}),
            expires_at=now - 1,
            issued_at=now - 900,
            jti="old",
        ),
    )
    for token in (
        rotated["refresh_token"],
        revoked["refresh_token"],
        revoked["access_token"],
        expired,
        "garbage",
        "plp_rt_garbage",
        "",
    ):
        assert introspect(client, token, resource) == {"active": False}, token


def test_another_tenants_client_sees_nothing(
    client: TestClient, make_staff: Callable[..., StaffMember], make_api_client: Callable[..., Credentials]
) -> None:
    owner = make_staff()
    tokens = staff_tokens(client, owner.user.email, owner.password)
    own = make_api_client(tenant=owner.tenant)
    theirs = cc_token(client, own)
    outsider = make_api_client()
    for token in (tokens["access_token"], tokens["refresh_token"], theirs):
        assert introspect(client, token, outsider) == {"active": False}
        assert introspect(client, token, own)["active"] is True
