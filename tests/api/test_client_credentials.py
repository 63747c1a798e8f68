"""Client credentials, as a partner shop's backend uses them."""

import base64
import json
from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.factories import Credentials


def _jwt_parts(token: str) -> tuple[dict, dict]:  # type: ignore[type-arg]
    header, payload, _ = token.split(".")

    def pad(s: str) -> str:
        return s + "=" * (-len(s) % 4)

    return json.loads(base64.urlsafe_b64decode(pad(header))), json.loads(base64.urlsafe_b64decode(pad(payload)))


def test_client_credentials_token_calls_a_protected_route(
    client: TestClient, make_api_client: Callable[..., Credentials]
) -> None:
    creds = make_api_client(["profile:read", "offers:read"])
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "profile:read"},
        auth=(creds.client_id, creds.client_secret),
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "profile:read"
    assert "refresh_token" not in body
    assert body["expires_in"] <= 900
    header, claims = _jwt_parts(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"
    assert claims["tid"] == creds.tenant_id
    assert claims["client_id"] == creds.client_id
    assert claims["aud"] == "http://testserver/v1"
    assert claims["exp"] - claims["iat"] <= 900

    me = client.get("/v1/tenant", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == creds.tenant_id


def test_wrong_secret_is_invalid_client(client: TestClient, make_api_client: Callable[..., Credentials]) -> None:
    creds = make_api_client()
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(creds.client_id, "plp_cs_wrong")
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_scope_beyond_the_client_is_not_granted(
    client: TestClient, make_api_client: Callable[..., Credentials]
) -> None:
    creds = make_api_client(["profile:read"])
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "profile:read offers:write"},
        auth=(creds.client_id, creds.client_secret),
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "profile:read"


def test_password_and_implicit_grants_do_not_exist(
    client: TestClient, make_api_client: Callable[..., Credentials]
) -> None:
    creds = make_api_client()
    response = client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "a", "password": "b"},
        auth=(creds.client_id, creds.client_secret),
    )
    assert response.json()["error"] == "unsupported_grant_type"
