"""The authorization endpoint under attack: redirect URIs, PKCE, response types.

RFC 6749 §4.1.2.1: while the client or its redirect URI is in doubt, the server must not
redirect anywhere (an error page instead); once both are valid, errors go back to that
redirect URI with `error`, `state` and (RFC 9207) `iss`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.factories import Credentials, StaffMember
from tests.flows import (
    DOCS_CLIENT,
    DOCS_REDIRECT,
    authorize_url,
    exchange,
    get_code,
    log_in,
    pkce_pair,
    query_of,
)


def assert_error_page(response: Response) -> None:
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert "Authorization error" in response.text


BAD_REDIRECTS = [
    pytest.param(DOCS_REDIRECT + "/", id="trailing-slash"),
    pytest.param(DOCS_REDIRECT + "?next=https://evil.example", id="extra-query"),
    pytest.param(DOCS_REDIRECT + "#fragment", id="fragment"),
    pytest.param("http://evil.example/docs/oauth2-redirect", id="other-host"),
    pytest.param("http://testserver.evil.example/docs/oauth2-redirect", id="host-suffix"),
    pytest.param("http://evil.example@testserver/docs/oauth2-redirect", id="userinfo"),
    pytest.param("https://testserver/docs/oauth2-redirect", id="https-instead-of-http"),
    pytest.param("javascript://testserver/docs/oauth2-redirect", id="other-scheme"),
    pytest.param("http://testserver:8080/docs/oauth2-redirect", id="other-port"),
    pytest.param("http://TESTSERVER/docs/oauth2-redirect", id="other-case"),
    pytest.param("http://testserver/docs/oauth2-redirect/../../evil", id="dot-segments"),
    pytest.param("http://testserver/docs/OAuth2-Redirect", id="path-case"),
]


@pytest.mark.parametrize("redirect_uri", BAD_REDIRECTS)
def test_unregistered_redirect_uri_is_an_error_page_not_a_redirect(client: TestClient, redirect_uri: str) -> None:
    _, challenge = pkce_pair()
    assert_error_page(client.get(authorize_url(challenge, redirect_uri=redirect_uri), follow_redirects=False))


@pytest.mark.parametrize("redirect_uri", BAD_REDIRECTS[:4])
def test_unregistered_redirect_uri_is_refused_when_logged_in_too(
    client: TestClient, make_staff: Callable[..., StaffMember], redirect_uri: str
) -> None:
    owner = make_staff()
    assert log_in(client, owner.user.email, owner.password).status_code == 303
    _, challenge = pkce_pair()
    response = client.get(authorize_url(challenge, redirect_uri=redirect_uri), follow_redirects=False)
    assert_error_page(response)
    assert "code=" not in response.text


def test_unknown_client_is_an_error_page(client: TestClient) -> None:
    _, challenge = pkce_pair()
    assert_error_page(client.get(authorize_url(challenge, client_id="cli_unknown"), follow_redirects=False))


def test_missing_client_id_is_an_error_page(client: TestClient) -> None:
    _, challenge = pkce_pair()
    url = authorize_url(challenge).replace(f"client_id={DOCS_CLIENT}&", "")
    assert "client_id" not in url
    assert_error_page(client.get(url, follow_redirects=False))


def test_confidential_client_cannot_use_the_authorization_endpoint(
    client: TestClient, make_api_client: Callable[..., Credentials]
) -> None:
    creds = make_api_client()
    _, challenge = pkce_pair()
    # It has no redirect URI at all: whatever it names is unregistered, so no redirect.
    url = authorize_url(challenge, client_id=creds.client_id)
    assert_error_page(client.get(url, follow_redirects=False))


def error_redirect(response: Response) -> dict[str, str]:
    """The query of an error redirect back to the (valid) redirect URI."""
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(DOCS_REDIRECT + "?"), location
    params = query_of(location)
    assert params["state"] == "xyz"
    assert params["iss"] == "http://testserver"
    assert "code" not in params
    return params


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"code_challenge_method": "plain"}, id="plain"),
        pytest.param({"code_challenge_method": "S512"}, id="unknown-method"),
        pytest.param({"code_challenge_method": "s256"}, id="lowercase-method"),
        pytest.param({"code_challenge": None}, id="missing-challenge"),
        pytest.param({"code_challenge": None, "code_challenge_method": None}, id="no-pkce-at-all"),
        pytest.param({"code_challenge_method": None}, id="missing-method"),
        pytest.param({"code_challenge": "too-short"}, id="malformed-challenge"),
    ],
)
def test_pkce_other_than_s256_is_refused(
    client: TestClient, make_staff: Callable[..., StaffMember], extra: dict[str, str | None]
) -> None:
    # Logged in, so that anything accepted would come back with a code.
    owner = make_staff()
    assert log_in(client, owner.user.email, owner.password).status_code == 303
    _, challenge = pkce_pair()
    url = authorize_url(challenge, **extra)  # type: ignore[arg-type]
    params = error_redirect(client.get(url, follow_redirects=False))
    assert params["error"] == "invalid_request"


def test_pkce_is_checked_before_the_login_page(client: TestClient) -> None:
    _, challenge = pkce_pair()
    url = authorize_url(challenge, code_challenge_method="plain")
    assert error_redirect(client.get(url, follow_redirects=False))["error"] == "invalid_request"


def test_implicit_response_type_is_refused(client: TestClient, make_staff: Callable[..., StaffMember]) -> None:
    owner = make_staff()
    assert log_in(client, owner.user.email, owner.password).status_code == 303
    _, challenge = pkce_pair()
    response = client.get(authorize_url(challenge, response_type="token"), follow_redirects=False)
    params = error_redirect(response)
    assert params["error"] == "unsupported_response_type"
    assert "access_token" not in response.headers["location"]


def test_unknown_scope_is_refused(client: TestClient, make_staff: Callable[..., StaffMember]) -> None:
    owner = make_staff()
    assert log_in(client, owner.user.email, owner.password).status_code == 303
    _, challenge = pkce_pair()
    params = error_redirect(client.get(authorize_url(challenge, scope="admin:everything"), follow_redirects=False))
    assert params["error"] == "invalid_scope"


def test_missing_code_verifier_is_refused(client: TestClient, make_staff: Callable[..., StaffMember]) -> None:
    owner = make_staff()
    issued = get_code(client, owner.user.email, owner.password)
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": issued.code,
            "redirect_uri": DOCS_REDIRECT,
            "client_id": DOCS_CLIENT,
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "access_token" not in response.json()
    # The code was not spent by the failed attempt: with the verifier it still works once.
    assert exchange(client, issued).status_code == 200


def test_verifier_sent_as_the_challenge_itself_is_refused(
    client: TestClient, make_staff: Callable[..., StaffMember]
) -> None:
    # What a `plain` downgrade would look like at the token endpoint.
    owner = make_staff()
    verifier, challenge = pkce_pair()
    url = authorize_url(challenge)
    assert log_in(client, owner.user.email, owner.password, url).status_code == 303
    code = query_of(client.get(url, follow_redirects=False).headers["location"])["code"]
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": DOCS_REDIRECT,
            "client_id": DOCS_CLIENT,
            "code_verifier": challenge,
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert verifier != challenge


def test_code_with_another_redirect_uri_at_the_token_endpoint(
    client: TestClient, make_staff: Callable[..., StaffMember]
) -> None:
    owner = make_staff()
    issued = get_code(client, owner.user.email, owner.password)
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": issued.code,
            "redirect_uri": DOCS_REDIRECT + "/",
            "client_id": DOCS_CLIENT,
            "code_verifier": issued.verifier,
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_code_of_another_client_is_refused(
    client: TestClient, make_staff: Callable[..., StaffMember], make_api_client: Callable[..., Credentials]
) -> None:
    owner = make_staff()
    issued = get_code(client, owner.user.email, owner.password)
    creds = make_api_client()
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": issued.code,
            "redirect_uri": DOCS_REDIRECT,
            "code_verifier": issued.verifier,
        },
        auth=(creds.client_id, creds.client_secret),
    )
    assert response.status_code in {400, 401}
    assert response.json()["error"] in {"unauthorized_client", "invalid_client", "invalid_grant"}
    assert "access_token" not in response.json()
