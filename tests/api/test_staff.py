"""Sign-up, invitations, roles and deactivation of staff accounts, through the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import Session, select

from partners import staff as staff_domain
from partners.retailers import Tenant
from partners.scopes import ROLE_SCOPES, Role
from partners.staff import StaffInvitation, StaffUser
from tests.factories import StaffMember
from tests.flows import bearer, log_in, refresh, staff_tokens

PASSWORD = "a perfectly long password"


def assert_problem(response: Response, status: int, code: str, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    if param is not None:
        assert body["param"] == param
    return body


def sign_up(client: TestClient, email: str, password: str = PASSWORD, organization: str = "Pet Beds Ltd") -> Response:
    return client.post("/v1/tenants", json={"organization": organization, "email": email, "password": password})


def test_sign_up_creates_the_organization_and_its_owner(client: TestClient, session: Session) -> None:
    response = sign_up(client, "  Owner@PetBeds.example ")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["tenant"]["id"].startswith("ten_")
    assert body["tenant"]["name"] == "Pet Beds Ltd"
    assert body["owner"]["role"] == "owner"
    assert body["owner"]["email"] == "owner@petbeds.example"
    assert body["owner"]["active"] is True
    assert "password" not in response.text
    assert "hash" not in response.text
    user = session.exec(select(StaffUser).where(StaffUser.id == body["owner"]["id"])).one()
    assert user.tenant_id == body["tenant"]["id"]
    assert PASSWORD not in user.password_hash

    # The owner can log in and holds every scope.
    tokens = staff_tokens(client, "owner@petbeds.example", PASSWORD)
    assert set(tokens["scope"].split()) == {str(s) for s in ROLE_SCOPES[Role.owner]}
    me = client.get("/v1/tenant", headers=bearer(tokens["access_token"]))
    assert me.json()["id"] == body["tenant"]["id"]


def test_duplicate_email_is_a_conflict(client: TestClient) -> None:
    assert sign_up(client, "owner@petbeds.example").status_code == 201
    assert_problem(sign_up(client, "OWNER@petbeds.example", organization="Copycat"), 409, "conflict", "email")


def test_a_duplicate_that_slips_past_the_check_is_still_a_conflict(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two concurrent sign-ups can both find the email free; the unique constraint must then
    # answer 409 (not a 500), and nothing of the loser's sign-up may remain.
    assert sign_up(client, "race@petbeds.example").status_code == 201
    monkeypatch.setattr(staff_domain, "_ensure_email_free", lambda session, email: None)
    response = sign_up(client, "race@petbeds.example", organization="The loser")
    assert_problem(response, 409, "conflict", "email")
    assert session.exec(select(Tenant).where(Tenant.name == "The loser")).first() is None


def test_short_password(client: TestClient) -> None:
    assert_problem(sign_up(client, "owner@petbeds.example", password="short"), 422, "validation_error", "password")


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "two words@shop.example"])
def test_invalid_email(client: TestClient, email: str) -> None:
    response = sign_up(client, email)
    assert response.status_code == 422
    assert response.json()["param"] == "email"


def test_unknown_fields_are_refused(client: TestClient) -> None:
    response = client.post(
        "/v1/tenants",
        json={"organization": "X", "email": "x@shop.example", "password": PASSWORD, "role": "admin"},
    )
    assert_problem(response, 422, "validation_error", "role")


def invite(client: TestClient, token: str, email: str, role: str) -> Response:
    return client.post("/v1/staff/invitations", json={"email": email, "role": role}, headers=bearer(token))


def accept(client: TestClient, token: str, password: str = PASSWORD) -> Response:
    return client.post("/v1/invitations/accept", json={"token": token, "password": password})


def test_invited_marketer_joins_and_logs_in(client: TestClient, make_staff: Callable[..., StaffMember]) -> None:
    owner = make_staff()
    owner_token = staff_tokens(client, owner.user.email, owner.password)["access_token"]
    invited = invite(client, owner_token, "Marketer@Shop.example", "marketer")
    assert invited.status_code == 201, invited.text
    invitation = invited.json()
    assert invitation["token"].startswith("plp_inv_")
    assert invitation["email"] == "marketer@shop.example"

    joined = accept(client, invitation["token"])
    assert joined.status_code == 201, joined.text
    assert joined.json()["role"] == "marketer"
    assert joined.json()["email"] == "marketer@shop.example"

    tokens = staff_tokens(client, "marketer@shop.example", PASSWORD)
    assert set(tokens["scope"].split()) == {str(s) for s in ROLE_SCOPES[Role.marketer]}
    me = client.get("/v1/tenant", headers=bearer(tokens["access_token"]))
    assert me.json()["id"] == owner.tenant.id
    listed = client.get("/v1/staff", headers=bearer(tokens["access_token"])).json()["data"]
    assert {u["email"] for u in listed} == {owner.user.email, "marketer@shop.example"}


def test_invitation_token_works_once(client: TestClient, make_staff: Callable[..., StaffMember]) -> None:
    owner = make_staff()
    owner_token = staff_tokens(client, owner.user.email, owner.password)["access_token"]
    token = invite(client, owner_token, "once@shop.example", "viewer").json()["token"]
    assert accept(client, token).status_code == 201
    assert_problem(accept(client, token, "another long password"), 404, "not_found", "token")
    assert_problem(accept(client, "plp_inv_made_up_token"), 404, "not_found", "token")
    # The first password stands.
    assert log_in(client, "once@shop.example", "another long password").status_code == 401


def test_invitation_is_stored_as_a_hash(
    client: TestClient, make_staff: Callable[..., StaffMember], session: Session
) -> None:
    owner = make_staff()
    owner_token = staff_tokens(client, owner.user.email, owner.password)["access_token"]
    token = invite(client, owner_token, "hashed@shop.example", "viewer").json()["token"]
    row = session.exec(select(StaffInvitation).where(StaffInvitation.email == "hashed@shop.example")).one()
    assert token not in str(row.model_dump())


def test_invitation_short_password_keeps_the_invitation(
    client: TestClient, make_staff: Callable[..., StaffMember]
) -> None:
    owner = make_staff()
    owner_token = staff_tokens(client, owner.user.email, owner.password)["access_token"]
    token = invite(client, owner_token, "later@shop.example", "viewer").json()["token"]
    assert accept(client, token, "short").status_code == 422
    assert accept(client, token).status_code == 201


def test_cannot_invite_an_owner_or_an_existing_account(
    client: TestClient, make_staff: Callable[..., StaffMember]
) -> None:
    owner = make_staff()
    other = make_staff()
    owner_token = staff_tokens(client, owner.user.email, owner.password)["access_token"]
    assert_problem(invite(client, owner_token, "boss@shop.example", "owner"), 422, "invalid", "role")
    assert_problem(invite(client, owner_token, other.user.email, "viewer"), 409, "conflict", "email")


@pytest.mark.parametrize("role", [Role.admin, Role.marketer, Role.viewer])
def test_only_owners_invite(client: TestClient, make_staff: Callable[..., StaffMember], role: Role) -> None:
    owner = make_staff()
    member = make_staff(role, owner.tenant)
    # Even asking for staff:write explicitly does not get it.
    tokens = staff_tokens(client, member.user.email, member.password, "staff:write staff:read")
    assert "staff:write" not in tokens["scope"].split()
    response = invite(client, tokens["access_token"], "new@shop.example", "viewer")
    assert_problem(response, 403, "insufficient_scope")
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_deactivated_member_loses_tokens_and_login(
    client: TestClient, make_staff: Callable[..., StaffMember], session: Session
) -> None:
    owner = make_staff()
    member = make_staff(Role.marketer, owner.tenant)
    owner_token = staff_tokens(client, owner.user.email, owner.password)["access_token"]
    member_tokens = staff_tokens(client, member.user.email, member.password)
    assert client.get("/v1/tenant", headers=bearer(member_tokens["access_token"])).status_code == 200

    response = client.patch(
        f"/v1/staff/{member.user.id}", json={"role": "marketer", "active": False}, headers=bearer(owner_token)
    )
    assert response.status_code == 200, response.text
    assert response.json()["active"] is False

    assert client.get("/v1/tenant", headers=bearer(member_tokens["access_token"])).status_code == 401
    assert refresh(client, member_tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert log_in(client, member.user.email, member.password).status_code == 401
    # The owner is untouched.
    assert client.get("/v1/tenant", headers=bearer(owner_token)).status_code == 200


def test_role_change_revokes_tokens_granted_under_the_old_role(
    client: TestClient, make_staff: Callable[..., StaffMember]
) -> None:
    owner = make_staff()
    admin = make_staff(Role.admin, owner.tenant)
    owner_token = staff_tokens(client, owner.user.email, owner.password)["access_token"]
    admin_tokens = staff_tokens(client, admin.user.email, admin.password)
    assert "clients:write" in admin_tokens["scope"].split()
    response = client.patch(f"/v1/staff/{admin.user.id}", json={"role": "viewer"}, headers=bearer(owner_token))
    assert response.status_code == 200
    assert client.get("/v1/clients", headers=bearer(admin_tokens["access_token"])).status_code == 401
    again = staff_tokens(client, admin.user.email, admin.password)
    assert set(again["scope"].split()) == {str(s) for s in ROLE_SCOPES[Role.viewer]}


def test_owner_cannot_be_demoted_nor_change_themselves(
    client: TestClient, make_staff: Callable[..., StaffMember]
) -> None:
    owner = make_staff()
    owner_token = staff_tokens(client, owner.user.email, owner.password)["access_token"]
    response = client.patch(
        f"/v1/staff/{owner.user.id}", json={"role": "viewer", "active": False}, headers=bearer(owner_token)
    )
    assert_problem(response, 403, "forbidden")
    assert client.get("/v1/tenant", headers=bearer(owner_token)).status_code == 200


def test_another_tenants_staff_are_not_found(
    client: TestClient, make_staff: Callable[..., StaffMember], token_for: Callable[..., str]
) -> None:
    victim_owner = make_staff()
    victim = make_staff(Role.marketer, victim_owner.tenant)
    outsider = token_for()  # another tenant, every scope
    response = client.patch(
        f"/v1/staff/{victim.user.id}", json={"role": "viewer", "active": False}, headers=bearer(outsider)
    )
    assert_problem(response, 404, "not_found")
    listed = client.get("/v1/staff", headers=bearer(outsider))
    assert listed.status_code == 200
    assert victim.user.id not in listed.text
    assert victim.user.email not in listed.text
    # The victim is untouched and can still log in.
    assert log_in(client, victim.user.email, victim.password).status_code == 303
