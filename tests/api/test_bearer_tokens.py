"""Access tokens at protected routes: anything but a valid, unexpired, unrevoked token of ours is a 401,
and a token without the route's scope is a 403 (RFC 6750 errors, problem+json bodies)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc.jwk import RSAKey
from sqlmodel import Session

from api.auth import access_tokens
from tests.flows import active_signing_key, b64url, bearer, forge, jwt_parts

ME = "/v1/tenant"


def assert_invalid_token(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 401
    assert body["code"] == "invalid_token"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge


@pytest.fixture
def real(token_for: Callable[..., str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a real token: forgeries start from them, so only one thing is wrong."""
    return jwt_parts(token_for(["profile:read"]))


@pytest.fixture
def key(app: FastAPI, session: Session) -> RSAKey:
    return active_signing_key(app, session)


def test_a_resigned_copy_of_a_real_token_is_accepted(
    client: TestClient, key: RSAKey, real: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    # The control for every forgery below: the helper itself makes tokens the API accepts.
    header, claims = real
    assert client.get(ME, headers=bearer(forge(key, header, claims))).status_code == 200


def test_expired_token(client: TestClient, key: RSAKey, real: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, claims = real
    now = int(time.time())
    expired = access_tokens.AccessClaims(
        tenant_id=claims["tid"],
        client_id=claims["client_id"],
        subject=claims["sub"],
        user_id=None,
        family_id=claims["sid"],
        scopes=frozenset(claims["scope"].split()),
        expires_at=now - 5,
        issued_at=now - 905,
        jti="expired-jti",
    )
    token = access_tokens.encode(key, "http://testserver", expired)
    assert_invalid_token(client.get(ME, headers=bearer(token)))


@pytest.mark.parametrize(
    ("header_change", "claims_change"),
    [
        pytest.param({}, {"aud": "http://testserver/other"}, id="wrong-audience"),
        pytest.param({}, {"iss": "https://evil.example"}, id="wrong-issuer"),
        pytest.param({}, {"iss": "https://evil.example", "aud": "https://evil.example/v1"}, id="other-server"),
        pytest.param({"typ": "JWT"}, {}, id="typ-JWT"),
        pytest.param({"typ": None}, {}, id="no-typ"),
        pytest.param({}, {"sid": "fam_doesnotexist"}, id="unknown-family"),
        pytest.param({}, {"tid": None}, id="no-tenant"),
        pytest.param({}, {"exp": None}, id="no-exp"),
    ],
)
def test_token_with_wrong_claims_or_header(
    client: TestClient,
    key: RSAKey,
    real: tuple[dict[str, Any], dict[str, Any]],
    header_change: dict[str, Any],
    claims_change: dict[str, Any],
) -> None:
    header, claims = real
    header = {k: v for k, v in (header | header_change).items() if v is not None}
    claims = {k: v for k, v in (claims | claims_change).items() if v is not None}
    assert_invalid_token(client.get(ME, headers=bearer(forge(key, header, claims))))


def test_tampered_payload(client: TestClient, token_for: Callable[..., str]) -> None:
    token = token_for(["profile:read"])
    header_b64, _, signature = token.split(".")
    _, claims = jwt_parts(token)
    claims["scope"] = "profile:read staff:write clients:write"
    tampered = f"{header_b64}.{b64url(json.dumps(claims).encode())}.{signature}"
    assert_invalid_token(client.get(ME, headers=bearer(tampered)))


def test_alg_none(client: TestClient, real: tuple[dict[str, Any], dict[str, Any]]) -> None:
    header, claims = real
    unsigned = b64url(json.dumps(header | {"alg": "none"}).encode()) + "." + b64url(json.dumps(claims).encode()) + "."
    assert_invalid_token(client.get(ME, headers=bearer(unsigned)))


def test_hs256_keyed_with_the_public_key(
    client: TestClient, key: RSAKey, real: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    # The classic algorithm confusion: an HMAC keyed with the (public) RSA key.
    header, claims = real
    signing_input = b64url(json.dumps(header | {"alg": "HS256"}).encode()) + "." + b64url(json.dumps(claims).encode())
    public_pem = key.as_pem(private=False)
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert_invalid_token(client.get(ME, headers=bearer(signing_input + "." + b64url(mac))))


def test_signed_by_a_key_we_do_not_know(client: TestClient, real: tuple[dict[str, Any], dict[str, Any]]) -> None:
    header, claims = real
    stranger = RSAKey.generate_key(2048, private=True)
    # Both with its own kid and while claiming to be our key.
    assert_invalid_token(client.get(ME, headers=bearer(forge(stranger, header | {"kid": "stranger"}, claims))))
    assert_invalid_token(client.get(ME, headers=bearer(forge(stranger, header, claims))))
    no_kid = {k: v for k, v in header.items() if k != "kid"}
    assert_invalid_token(client.get(ME, headers=bearer(forge(stranger, no_kid, claims))))


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "plp_rt_notatoken", "e30.e30.", "....", "x" * 5000])
def test_garbage_tokens(client: TestClient, garbage: str) -> None:
    response = client.get(ME, headers={"Authorization": f"Bearer {garbage}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")


def test_missing_token(client: TestClient) -> None:
    response = client.get(ME)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    # RFC 6750 §3.1: no error code when the request carried no credentials at all.
    assert response.headers["www-authenticate"] == 'Bearer realm="partnerloop"'


@pytest.mark.parametrize("scheme", ["Basic", "Token", "bearer:", "MAC"])
def test_other_authorization_schemes(client: TestClient, token_for: Callable[..., str], scheme: str) -> None:
    token = token_for(["profile:read"])
    assert client.get(ME, headers={"Authorization": f"{scheme} {token}"}).status_code == 401


def test_token_in_the_query_string_is_not_accepted(client: TestClient, token_for: Callable[..., str]) -> None:
    token = token_for(["profile:read"])
    assert client.get(ME, params={"access_token": token}).status_code == 401
    # The same token in the header works: the refusal is about where it was sent.
    assert client.get(ME, headers=bearer(token)).status_code == 200


def test_token_in_a_form_body_is_not_accepted(client: TestClient, token_for: Callable[..., str]) -> None:
    token = token_for(["clients:write"])
    response = client.post("/v1/clients", data={"access_token": token})
    assert response.status_code == 401


def test_bearer_scheme_is_case_insensitive(client: TestClient, token_for: Callable[..., str]) -> None:
    token = token_for(["profile:read"])
    assert client.get(ME, headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_insufficient_scope(client: TestClient, token_for: Callable[..., str]) -> None:
    token = token_for(["offers:read"])
    response = client.get(ME, headers=bearer(token))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "insufficient_scope"
    assert "profile:read" in body["detail"]
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="profile:read"' in challenge
