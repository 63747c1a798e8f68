"""API clients: created with a secret shown once, scoped no wider than their creator, rotated, revoked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import text
from sqlmodel import Session

from partners.crypto import hash_secret
from partners.scopes import Role
from tests.factories import Credentials, StaffMember
from tests.flows import bearer, client_credentials, staff_tokens


def create(client: TestClient, token: str, scopes: list[str], name: str = "shop backend") -> Response:
    return client.post("/v1/clients", json={"name": name, "scopes": scopes}, headers=bearer(token))


def assert_problem(response: Response, status: int, code: str, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    if param is not None:
        assert body["param"] == param
    return body


def token_of(client: TestClient, client_id: str, secret: str) -> str:
    response = client_credentials(client, client_id, secret)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def test_create_shows_the_secret_once(client: TestClient, token_for: Callable[..., str]) -> None:
    admin = token_for()
    created = create(client, admin, ["profile:read", "offers:read"])
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"].startswith("cli_")
    assert body["client_secret"].startswith("plp_cs_")
    assert len(body["client_secret"]) > 40
    assert body["scopes"] == ["offers:read", "profile:read"]

    one = client.get(f"/v1/clients/{body['id']}", headers=bearer(admin))
    assert one.status_code == 200
    listed = client.get("/v1/clients", headers=bearer(admin))
    assert listed.status_code == 200
    assert body["id"] in {c["id"] for c in listed.json()["data"]}
    for response in (one, listed):
        assert body["client_secret"] not in response.text
        assert "client_secret" not in response.text
        assert "secret_hash" not in response.text
        assert hash_secret(body["client_secret"]) not in response.text

    # The new client works with its secret, within its scopes.
    token = token_of(client, body["id"], body["client_secret"])
    assert client.get("/v1/tenant", headers=bearer(token)).status_code == 200
    assert client.get("/v1/clients", headers=bearer(token)).status_code == 403


def test_secret_is_stored_only_as_a_hash(client: TestClient, token_for: Callable[..., str], session: Session) -> None:
    body = create(client, token_for(), ["profile:read"]).json()
    row = session.execute(text("SELECT * FROM api_clients WHERE id = :id"), {"id": body["id"]}).mappings().one()
    assert not any(body["client_secret"] in str(value) for value in row.values())
    assert row["secret_hash"] == hash_secret(body["client_secret"])


def test_refresh_tokens_and_codes_are_stored_only_as_hashes(
    client: TestClient, make_staff: Callable[..., StaffMember], session: Session
) -> None:
    owner = make_staff()
    tokens = staff_tokens(client, owner.user.email, owner.password)
    for table in ("refresh_tokens", "authorization_codes"):
        rows = session.execute(text(f"SELECT * FROM {table}")).mappings().all()  # noqa: S608
        assert rows
        dump = repr([dict(r) for r in rows])
        assert tokens["refresh_token"] not in dump
        assert "plp_rt_" not in dump
        assert "plp_ac_" not in dump


def test_cannot_grant_a_scope_the_creator_lacks(
    client: TestClient, token_for: Callable[..., str], make_staff: Callable[..., StaffMember]
) -> None:
    narrow = token_for(["clients:write", "profile:read"])
    assert_problem(create(client, narrow, ["profile:read", "offers:write"]), 422, "invalid", "scopes")
    assert create(client, narrow, ["profile:read"]).status_code == 201

    # A staff member is bounded by what they asked for at login, as well as by their role.
    owner = make_staff()
    staff = staff_tokens(client, owner.user.email, owner.password, "clients:write offers:read")
    assert_problem(create(client, staff["access_token"], ["staff:write"]), 422, "invalid", "scopes")


def test_admin_cannot_grant_staff_write(client: TestClient, make_staff: Callable[..., StaffMember]) -> None:
    owner = make_staff()
    admin = make_staff(Role.admin, owner.tenant)
    token = staff_tokens(client, admin.user.email, admin.password)["access_token"]
    assert_problem(create(client, token, ["staff:write"]), 422, "invalid", "scopes")


def test_unknown_or_no_scope(client: TestClient, token_for: Callable[..., str]) -> None:
    admin = token_for()
    assert_problem(create(client, admin, ["profile:read", "root"]), 422, "invalid", "scopes")
    assert create(client, admin, []).status_code == 422


def test_rotate_replaces_the_secret_and_revokes_tokens(client: TestClient, token_for: Callable[..., str]) -> None:
    admin = token_for()
    body = create(client, admin, ["profile:read"]).json()
    old_secret = body["client_secret"]
    before = token_of(client, body["id"], old_secret)

    rotated = client.post(f"/v1/clients/{body['id']}/rotate-secret", headers=bearer(admin))
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["client_secret"]
    assert new_secret.startswith("plp_cs_")
    assert new_secret != old_secret
    assert rotated.json()["rotated_at"] is not None

    refused = client_credentials(client, body["id"], old_secret)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert client.get("/v1/tenant", headers=bearer(before)).status_code == 401
    after = token_of(client, body["id"], new_secret)
    assert client.get("/v1/tenant", headers=bearer(after)).status_code == 200


def test_revoked_client_is_dead(client: TestClient, token_for: Callable[..., str]) -> None:
    admin = token_for()
    body = create(client, admin, ["profile:read"]).json()
    before = token_of(client, body["id"], body["client_secret"])

    deleted = client.delete(f"/v1/clients/{body['id']}", headers=bearer(admin))
    assert deleted.status_code == 204

    refused = client_credentials(client, body["id"], body["client_secret"])
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert client.get("/v1/tenant", headers=bearer(before)).status_code == 401
    shown = client.get(f"/v1/clients/{body['id']}", headers=bearer(admin)).json()
    assert shown["revoked_at"] is not None
    # A revoked client cannot be brought back by rotating its secret.
    assert client.post(f"/v1/clients/{body['id']}/rotate-secret", headers=bearer(admin)).status_code == 422


def test_another_tenants_clients_are_not_found(client: TestClient, token_for: Callable[..., str]) -> None:
    owner_a = token_for()
    victim = create(client, owner_a, ["profile:read"], name="tenant A's backend").json()
    victim_token = token_of(client, victim["id"], victim["client_secret"])
    outsider = token_for()  # tenant B, every scope

    for method, path in (
        ("GET", f"/v1/clients/{victim['id']}"),
        ("POST", f"/v1/clients/{victim['id']}/rotate-secret"),
        ("DELETE", f"/v1/clients/{victim['id']}"),
    ):
        response = client.request(method, path, headers=bearer(outsider))
        assert_problem(response, 404, "not_found")
        assert "tenant A's backend" not in response.text
    listed = client.get("/v1/clients", headers=bearer(outsider))
    assert victim["id"] not in listed.text

    # Nothing happened to tenant A's client.
    assert client.get("/v1/tenant", headers=bearer(victim_token)).status_code == 200
    assert token_of(client, victim["id"], victim["client_secret"])


def test_client_credentials_in_the_url_are_not_accepted(
    client: TestClient, make_api_client: Callable[..., Credentials]
) -> None:
    creds = make_api_client(["profile:read"])
    response = client.post(
        "/oauth/token",
        params={"grant_type": "client_credentials", "client_id": creds.client_id, "client_secret": creds.client_secret},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    # The same credentials in the form body work.
    body = {"grant_type": "client_credentials", "client_id": creds.client_id, "client_secret": creds.client_secret}
    assert client.post("/oauth/token", data=body).status_code == 200


def test_rotating_needs_every_scope_the_client_holds(
    client: TestClient, make_staff: Callable[..., StaffMember]
) -> None:
    owner = make_staff()
    admin = make_staff(Role.admin, owner.tenant)
    owner_token = staff_tokens(client, owner.user.email, owner.password)["access_token"]
    powerful = create(client, owner_token, ["staff:write", "profile:read"], name="owner's automation").json()
    # An admin may not hold staff:write, so must not get a secret of a client that does.
    admin_token = staff_tokens(client, admin.user.email, admin.password)["access_token"]
    response = client.post(f"/v1/clients/{powerful['id']}/rotate-secret", headers=bearer(admin_token))
    assert_problem(response, 403, "forbidden", "client_id")
    assert "client_secret" not in response.text
    assert token_of(client, powerful["id"], powerful["client_secret"])
