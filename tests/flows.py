"""The staff login and authorization code + PKCE flow, step by step, for tests."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlmodel import Session

DOCS_CLIENT = "partnerloop-docs"
DOCS_REDIRECT = "http://testserver/docs/oauth2-redirect"


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def csrf_from(page: Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "login page has no CSRF token"
    return match.group(1)


def log_in(client: TestClient, email: str, password: str, next_url: str = "/docs") -> Response:
    """Fill in the login form as a browser would."""
    page = client.get("/login", params={"next": next_url})
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_from(page), "next": next_url},
        follow_redirects=False,
    )


def authorize_url(challenge: str, scope: str = "", redirect_uri: str = DOCS_REDIRECT, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": DOCS_CLIENT,
        "redirect_uri": redirect_uri,
        "state": "xyz",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if scope:
        params["scope"] = scope
    params.update(extra)
    return "/oauth/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Issued:
    code: str
    verifier: str


def get_code(client: TestClient, email: str, password: str, scope: str = "") -> Issued:
    """Log in and authorize the docs client; the code it would receive."""
    verifier, challenge = pkce_pair()
    url = authorize_url(challenge, scope)
    assert log_in(client, email, password, url).status_code == 303
    response = client.get(url, follow_redirects=False)
    assert response.status_code == 302, response.text
    params = query_of(response.headers["location"])
    assert params["state"] == "xyz"
    return Issued(params["code"], verifier)


def exchange(client: TestClient, issued: Issued) -> Response:
    return client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": issued.code,
            "redirect_uri": DOCS_REDIRECT,
            "client_id": DOCS_CLIENT,
            "code_verifier": issued.verifier,
        },
    )


def refresh(client: TestClient, refresh_token: str, scope: str | None = None) -> Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": DOCS_CLIENT}
    if scope is not None:
        data["scope"] = scope
    return client.post("/oauth/token", data=data)


def bearer(token: str) -> dict[str, str]:
    """The Authorization header carrying an access token."""
    return {"Authorization": f"Bearer {token}"}


def staff_tokens(client: TestClient, email: str, password: str, scope: str = "") -> dict[str, Any]:
    """Log in and run the whole code + PKCE flow; the token response."""
    response = exchange(client, get_code(client, email, password, scope))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def client_credentials(client: TestClient, client_id: str, client_secret: str, scope: str | None = None) -> Response:
    """A client credentials token request, authenticating with HTTP Basic."""
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    return client.post("/oauth/token", data=data, auth=(client_id, client_secret))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a JWT, unverified."""
    header, payload, _ = token.split(".")
    return _b64json(header), _b64json(payload)


def _b64json(part: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def forge(key: RSAKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Sign exactly this header and these claims with `key` (RS256), checking nothing."""
    return jwt.encode(header, claims, key, algorithms=["RS256"])


def active_signing_key(app: FastAPI, session: Session) -> RSAKey:
    """The private key the app signs access tokens with now (made, and committed, if there is none)."""
    key: RSAKey = app.state.keyring.signing_key(session)
    session.commit()
    return key
