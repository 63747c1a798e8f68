"""Staff log in through the authorization code + PKCE flow, as the docs UI or a partner's app does."""

from collections.abc import Callable

from authlib.integrations.httpx_client import OAuth2Client
from fastapi.testclient import TestClient

from partners.scopes import Role
from tests.factories import StaffMember
from tests.flows import DOCS_CLIENT, DOCS_REDIRECT, csrf_from, exchange, get_code, query_of, refresh


def test_full_flow_with_authlibs_own_httpx_client(client: TestClient, make_staff: Callable[..., StaffMember]) -> None:
    member = make_staff(Role.marketer)
    oauth = OAuth2Client(
        client_id=DOCS_CLIENT,
        redirect_uri=DOCS_REDIRECT,
        scope="offers:read profile:read",
        code_challenge_method="S256",
        base_url="http://testserver",
        transport=client._transport,
    )
    verifier = "v" * 64
    url, state = oauth.create_authorization_url("http://testserver/oauth/authorize", code_verifier=verifier)

    # The staff member's browser follows the authorization URL and logs in.
    browser = client
    to_login = browser.get(url, follow_redirects=False)
    assert to_login.status_code == 302
    assert to_login.headers["location"].startswith("/login?next=")
    page = browser.get(to_login.headers["location"])
    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
    next_url = query_of(to_login.headers["location"])["next"]
    logged_in = browser.post(
        "/login",
        data={"email": member.user.email, "password": member.password, "csrf_token": csrf_from(page), "next": next_url},
        follow_redirects=False,
    )
    assert logged_in.status_code == 303
    back = browser.get(logged_in.headers["location"], follow_redirects=False)
    assert back.status_code == 302
    location = back.headers["location"]
    assert location.startswith(DOCS_REDIRECT + "?")
    assert query_of(location)["iss"] == "http://testserver"
    assert query_of(location)["state"] == state

    # The app behind the redirect URI finishes with authlib's client.
    token = oauth.fetch_token("http://testserver/oauth/token", authorization_response=location, code_verifier=verifier)
    assert token["scope"] == "offers:read profile:read"
    assert token["refresh_token"].startswith("plp_rt_")
    me = oauth.get("/v1/tenant")
    assert me.status_code == 200
    assert me.json()["id"] == member.tenant.id
    assert oauth.get("/v1/staff").status_code == 403, "staff:read was not requested"


def test_role_limits_the_scopes_granted(client: TestClient, make_staff: Callable[..., StaffMember]) -> None:
    viewer = make_staff(Role.viewer)
    issued = get_code(client, viewer.user.email, viewer.password, "offers:read offers:write clients:write")
    token = exchange(client, issued).json()
    assert token["scope"] == "offers:read"


def test_no_scope_asked_grants_the_role(client: TestClient, make_staff: Callable[..., StaffMember]) -> None:
    owner = make_staff(Role.owner)
    token = exchange(client, get_code(client, owner.user.email, owner.password)).json()
    assert "staff:write" in token["scope"].split()
    me = client.get("/v1/tenant", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.json()["id"] == owner.tenant.id


def test_refresh_rotates_and_reuse_revokes_the_family(
    client: TestClient, make_staff: Callable[..., StaffMember]
) -> None:
    owner = make_staff()
    first = exchange(client, get_code(client, owner.user.email, owner.password)).json()
    second = refresh(client, first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert client.get("/v1/tenant", headers={"Authorization": f"Bearer {second['access_token']}"}).status_code == 200

    replay = refresh(client, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # The whole family is gone: the rotated refresh token and the access tokens too.
    assert refresh(client, second["refresh_token"]).json()["error"] == "invalid_grant"
    assert client.get("/v1/tenant", headers={"Authorization": f"Bearer {second['access_token']}"}).status_code == 401


def test_scope_escalation_on_refresh_is_invalid_scope(
    client: TestClient, make_staff: Callable[..., StaffMember]
) -> None:
    owner = make_staff()
    token = exchange(client, get_code(client, owner.user.email, owner.password, "offers:read")).json()
    response = refresh(client, token["refresh_token"], scope="offers:read offers:write")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_code_used_twice_is_refused_and_revokes_the_first_tokens(
    client: TestClient, make_staff: Callable[..., StaffMember]
) -> None:
    owner = make_staff()
    issued = get_code(client, owner.user.email, owner.password)
    first = exchange(client, issued).json()
    again = exchange(client, issued)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert client.get("/v1/tenant", headers={"Authorization": f"Bearer {first['access_token']}"}).status_code == 401
    assert refresh(client, first["refresh_token"]).json()["error"] == "invalid_grant"


def test_wrong_pkce_verifier_is_invalid_grant(client: TestClient, make_staff: Callable[..., StaffMember]) -> None:
    owner = make_staff()
    issued = get_code(client, owner.user.email, owner.password)
    issued.verifier = "w" * 64
    response = exchange(client, issued)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
