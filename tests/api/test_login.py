"""The staff login page: throttling, CSRF, open redirects, and the headers of its pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import update
from sqlmodel import Session

from api.auth.login import LOGIN_COOKIE
from partners.db import utcnow
from partners.login_throttle import PER_ADDRESS, PER_EMAIL, WINDOW, LoginFailure
from tests.factories import StaffMember
from tests.flows import authorize_url, csrf_from, get_code, log_in, pkce_pair


def error_text(page: Response) -> str:
    match = re.search(r'<p class="error" role="alert">(.*?)</p>', page.text)
    assert match, "the page shows no error"
    return match.group(1)


def sets_login_cookie(response: Response) -> bool:
    return any(h.startswith(LOGIN_COOKIE + "=") for h in response.headers.get_list("set-cookie"))


def test_successful_login_sets_an_httponly_lax_cookie(
    client: TestClient, make_staff: Callable[..., StaffMember]
) -> None:
    member = make_staff()
    response = log_in(client, member.user.email, member.password)
    assert response.status_code == 303
    assert response.headers["location"] == "/docs"
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(LOGIN_COOKIE + "="))
    assert "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower()


def test_unknown_email_and_wrong_password_fail_identically(
    client: TestClient, make_staff: Callable[..., StaffMember]
) -> None:
    member = make_staff()
    wrong_password = log_in(client, member.user.email, "not the password at all")
    unknown_email = log_in(client, "nobody@shop.example", member.password)
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert error_text(wrong_password) == error_text(unknown_email)
    assert not sets_login_cookie(wrong_password)
    assert not sets_login_cookie(unknown_email)


def test_deactivated_account_fails_like_a_wrong_password(
    client: TestClient, make_staff: Callable[..., StaffMember], session: Session
) -> None:
    member = make_staff()
    member.user.active = False
    session.add(member.user)
    session.commit()
    response = log_in(client, member.user.email, member.password)
    assert response.status_code == 401
    assert error_text(response) == error_text(log_in(client, "nobody@shop.example", "whatever password"))


def test_brute_force_is_throttled_even_for_the_right_password(
    client: TestClient, make_staff: Callable[..., StaffMember], session: Session
) -> None:
    member = make_staff()
    for _ in range(PER_EMAIL):
        assert log_in(client, member.user.email, "guess guess guess").status_code == 401
    refused = log_in(client, member.user.email, member.password)
    assert refused.status_code == 429
    retry_after = int(refused.headers["retry-after"])
    assert 0 < retry_after <= WINDOW.total_seconds()
    assert not sets_login_cookie(refused)
    # The same account in other spellings is the same account.
    assert log_in(client, "  " + member.user.email.upper(), member.password).status_code == 429

    # Once the window has passed, the right password works again.
    session.exec(update(LoginFailure).values(at=utcnow() - WINDOW - timedelta(seconds=1)))
    session.commit()
    allowed = log_in(client, member.user.email, member.password)
    assert allowed.status_code == 303
    assert sets_login_cookie(allowed)


def test_a_success_resets_the_account_count(client: TestClient, make_staff: Callable[..., StaffMember]) -> None:
    member = make_staff()
    for _ in range(PER_EMAIL - 1):
        assert log_in(client, member.user.email, "guess guess guess").status_code == 401
    assert log_in(client, member.user.email, member.password).status_code == 303
    for _ in range(PER_EMAIL - 1):
        assert log_in(client, member.user.email, "guess guess guess").status_code == 401
    assert log_in(client, member.user.email, member.password).status_code == 303


def test_password_spraying_from_one_address_is_throttled(
    client: TestClient, make_staff: Callable[..., StaffMember], session: Session
) -> None:
    member = make_staff()
    # As many failures as one address may have, against other accounts (TestClient's address is "testclient").
    session.add_all(LoginFailure(subject="addr:testclient") for _ in range(PER_ADDRESS))
    session.commit()
    response = log_in(client, member.user.email, member.password)
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0


def post_login(client: TestClient, member: StaffMember, csrf_token: str | None) -> Response:
    data = {"email": member.user.email, "password": member.password, "next": "/docs"}
    if csrf_token is not None:
        data["csrf_token"] = csrf_token
    return client.post("/login", data=data, follow_redirects=False)


def test_login_without_csrf_token_is_refused(client: TestClient, make_staff: Callable[..., StaffMember]) -> None:
    member = make_staff()
    client.get("/login")  # the browser has the CSRF cookie, but the form does not carry the token
    response = post_login(client, member, None)
    assert response.status_code == 403
    assert not sets_login_cookie(response)


@pytest.mark.parametrize("forged", ["", "forged", "eyJuIjoiYWJjIn0.c2lnbmF0dXJl", "a.b.c"])
def test_login_with_a_forged_csrf_token_is_refused(
    client: TestClient, make_staff: Callable[..., StaffMember], forged: str
) -> None:
    member = make_staff()
    client.get("/login")
    response = post_login(client, member, forged)
    assert response.status_code == 403
    assert not sets_login_cookie(response)


def test_csrf_token_of_another_browser_is_refused(
    app: FastAPI, client: TestClient, make_staff: Callable[..., StaffMember]
) -> None:
    member = make_staff()
    # The attacker's own, validly signed token, planted in the victim's browser form.
    with TestClient(app) as attacker:
        token = csrf_from(attacker.get("/login"))
    client.get("/login")
    response = post_login(client, member, token)
    assert response.status_code == 403
    assert not sets_login_cookie(response)


def test_csrf_token_without_its_cookie_is_refused(client: TestClient, make_staff: Callable[..., StaffMember]) -> None:
    member = make_staff()
    token = csrf_from(client.get("/login"))
    client.cookies.clear()
    response = post_login(client, member, token)
    assert response.status_code == 403
    assert not sets_login_cookie(response)
    # Control: with its cookie the same kind of token works.
    assert post_login(client, member, csrf_from(client.get("/login"))).status_code == 303


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example",
        "//evil.example/docs",
        "/\\evil.example",
        "http://testserver.evil.example/oauth/authorize?x=1",
        "javascript:alert(1)",
        "/docs/../oauth2-redirect",
        "/oauth/authorize",
        "https://evil.example/oauth/authorize?client_id=x",
    ],
)
def test_next_never_redirects_off_site(client: TestClient, make_staff: Callable[..., StaffMember], target: str) -> None:
    member = make_staff()
    response = log_in(client, member.user.email, member.password, next_url=target)
    assert response.status_code == 303
    assert response.headers["location"] == "/docs"


def test_next_is_kept_for_our_authorization_endpoint(
    client: TestClient, make_staff: Callable[..., StaffMember]
) -> None:
    member = make_staff()
    _, challenge = pkce_pair()
    target = f"/oauth/authorize?response_type=code&client_id=partnerloop-docs&code_challenge={challenge}"
    response = log_in(client, member.user.email, member.password, next_url=target)
    assert response.headers["location"] == target


def test_login_page_headers(client: TestClient) -> None:
    page = client.get("/login", params={"next": "https://evil.example"})
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "evil.example" not in page.text


def test_failed_login_page_headers(client: TestClient) -> None:
    page = log_in(client, "nobody@shop.example", "whatever password")
    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert page.headers["cache-control"] == "no-store"


def test_logout_forgets_the_login(client: TestClient, make_staff: Callable[..., StaffMember]) -> None:
    member = make_staff()
    get_code(client, member.user.email, member.password)
    response = client.post("/logout", follow_redirects=False)
    assert response.status_code == 303
    _, challenge = pkce_pair()
    again = client.get(authorize_url(challenge), follow_redirects=False)
    assert again.status_code == 302
    assert again.headers["location"].startswith("/login?next=")
