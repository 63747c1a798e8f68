"""Authorization server metadata (RFC 8414), the JWKS and signing key rotation, token response headers."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, select

from partners import signing_keys
from partners.db import utcnow
from partners.settings import Settings
from tests.factories import Credentials, StaffMember
from tests.flows import bearer, client_credentials, exchange, get_code, jwt_parts, refresh

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def test_metadata(client: TestClient, settings: Settings) -> None:
    response = client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    meta = response.json()
    assert meta["issuer"] == settings.issuer == "http://testserver"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert "implicit" not in meta["grant_types_supported"]
    assert "password" not in meta["grant_types_supported"]
    assert set(meta["grant_types_supported"]) == {"authorization_code", "refresh_token", "client_credentials"}
    assert meta["authorization_response_iss_parameter_supported"] is True
    for name in ("authorization_endpoint", "token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        assert meta[name].startswith(settings.issuer + "/oauth/")
    assert meta["jwks_uri"] == settings.issuer + "/.well-known/jwks.json"
    assert "none" not in meta["introspection_endpoint_auth_methods_supported"]


def test_every_advertised_endpoint_exists(client: TestClient) -> None:
    meta = client.get("/.well-known/oauth-authorization-server").json()
    assert client.get(meta["jwks_uri"]).status_code == 200
    for name in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        # Answered by the OAuth server (an RFC 6749 error), not a 404.
        assert client.post(meta[name], data={}).status_code in {400, 401}
    assert client.get(meta["authorization_endpoint"], follow_redirects=False).status_code == 400


def test_jwks_publishes_public_members_only(client: TestClient, token_for: Callable[..., str]) -> None:
    token_for()
    keys = client.get("/.well-known/jwks.json").json()["keys"]
    assert keys
    for key in keys:
        assert not PRIVATE_MEMBERS & set(key), key
        assert key["kty"] == "RSA"
        assert key["use"] == "sig"
        assert key["alg"] == "RS256"
        assert key["kid"]


def test_private_keys_are_encrypted_at_rest(session: Session, token_for: Callable[..., str]) -> None:
    token_for()
    rows = session.exec(select(signing_keys.SigningKey)).all()
    assert rows
    for row in rows:
        assert '"d"' not in row.private_jwk_encrypted
        assert not PRIVATE_MEMBERS & set(json.loads(row.public_jwk))


def test_rotation_keeps_the_retired_key_published_and_its_tokens_valid(
    client: TestClient, session: Session, settings: Settings, make_api_client: Callable[..., Credentials]
) -> None:
    creds = make_api_client(["profile:read"])
    before = client_credentials(client, creds.client_id, creds.client_secret).json()["access_token"]
    old_kid = jwt_parts(before)[0]["kid"]

    new_key = signing_keys.rotate(session, settings.encryption_key.get_secret_value())
    session.commit()
    assert new_key.kid != old_kid

    published = {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert {old_kid, new_key.kid} <= published
    assert client.get("/v1/tenant", headers=bearer(before)).status_code == 200

    after = client_credentials(client, creds.client_id, creds.client_secret).json()["access_token"]
    assert jwt_parts(after)[0]["kid"] == new_key.kid
    assert client.get("/v1/tenant", headers=bearer(after)).status_code == 200
    assert client.get("/v1/tenant", headers=bearer(before)).status_code == 200


def test_a_long_retired_key_is_no_longer_published(
    client: TestClient, session: Session, settings: Settings, token_for: Callable[..., str]
) -> None:
    old_kid = jwt_parts(token_for())[0]["kid"]
    signing_keys.rotate(session, settings.encryption_key.get_secret_value())
    long_ago = utcnow() - timedelta(seconds=settings.access_token_ttl_seconds) - timedelta(minutes=5)
    key = signing_keys.SigningKey
    session.exec(update(key).where(col(key.kid) == old_kid).values(retired_at=long_ago))
    session.commit()
    published = {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert old_kid not in published
    assert published


def test_token_responses_are_not_cached(
    client: TestClient, make_api_client: Callable[..., Credentials], make_staff: Callable[..., StaffMember]
) -> None:
    creds = make_api_client()
    owner = make_staff()
    issued = get_code(client, owner.user.email, owner.password)
    code_response = exchange(client, issued)
    responses = {
        "client_credentials": client_credentials(client, creds.client_id, creds.client_secret),
        "invalid_client": client_credentials(client, creds.client_id, "plp_cs_wrong"),
        "authorization_code": code_response,
        "code reused": exchange(client, issued),
        "refresh_token": refresh(client, code_response.json()["refresh_token"]),
    }
    for name, response in responses.items():
        assert response.headers["cache-control"] == "no-store", name
        assert response.headers["pragma"] == "no-cache", name
        assert response.headers["content-type"] == "application/json", name
