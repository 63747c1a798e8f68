"""No secret or key ever appears in a log line, and each appears in exactly one response: the one
that issues it. A whole flow runs with every logger captured at DEBUG: a staff login, API
clients created and rotated, tokens issued, webhook endpoints created and rotated, an invitation."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from partners.logs import REDACTED, JsonFormatter, configure
from partners.settings import Settings
from tests.factories import StaffMember
from tests.flows import bearer, client_credentials, exchange, get_code

PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}


class Flow:
    """Calls the app, keeping every response and every secret it hands out."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.responses: list[Response] = []
        self.secrets: dict[str, str] = {}

    def call(self, method: str, path: str, **kwargs: Any) -> Response:
        response = self.client.request(method, path, **kwargs)
        self.responses.append(response)
        assert response.status_code < 400, f"{method} {path}: {response.text}"
        return response

    def keep(self, name: str, value: str) -> str:
        assert value, name
        self.secrets[name] = value
        return value


def run_flow(flow: Flow, owner: StaffMember) -> None:
    flow.keep("staff password", owner.password)
    issued_tokens = exchange(flow.client, get_code(flow.client, owner.user.email, owner.password))
    flow.responses.append(issued_tokens)
    tokens = issued_tokens.json()
    me = bearer(flow.keep("staff access token", tokens["access_token"]))
    flow.keep("staff refresh token", tokens["refresh_token"])

    created = flow.call("POST", "/v1/clients", json={"name": "backend", "scopes": ["offers:read"]}, headers=me).json()
    flow.keep("client secret", created["client_secret"])
    rotated = flow.call("POST", f"/v1/clients/{created['id']}/rotate-secret", headers=me).json()
    secret = flow.keep("rotated client secret", rotated["client_secret"])
    issued = client_credentials(flow.client, created["id"], secret)
    flow.responses.append(issued)
    client_token = flow.keep("client access token", issued.json()["access_token"])
    flow.call("GET", "/v1/offers", headers=bearer(client_token))
    flow.call("POST", "/oauth/introspect", data={"token": client_token}, auth=(created["id"], secret))

    hook = {"url": "https://hooks.example/in", "events": ["offer.*"]}
    endpoint = flow.call("POST", "/v1/webhook-endpoints", json=hook, headers=me).json()
    flow.keep("webhook secret", endpoint["secret"])
    rotated_hook = flow.call("POST", f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=me).json()
    flow.keep("rotated webhook secret", rotated_hook["secret"])

    invitation = flow.call(
        "POST", "/v1/staff/invitations", json={"email": "new@shop.example", "role": "marketer"}, headers=me
    ).json()
    flow.keep("invitation token", invitation["token"])
    password = flow.keep("invitee password", "a new password that is long enough")
    flow.call("POST", "/v1/invitations/accept", json={"token": invitation["token"], "password": password})

    # Every read of what was made: none may carry a secret again.
    for path in (
        "/v1/clients",
        f"/v1/clients/{created['id']}",
        "/v1/webhook-endpoints",
        f"/v1/webhook-endpoints/{endpoint['id']}",
        "/v1/staff",
        "/v1/tenant",
    ):
        flow.call("GET", path, headers=me)
    flow.call("POST", "/oauth/revoke", data={"token": tokens["refresh_token"], "client_id": "partnerloop-docs"})
    # A failing call with a secret in it must not echo the secret back in the error either.
    flow.responses.append(
        flow.client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(created["id"], flow.secrets["client secret"]),
        )
    )


def logged_text(records: list[logging.LogRecord]) -> str:
    """Every record as the service writes it: through our JSON formatter, extras included."""
    formatter = JsonFormatter()
    return "\n".join(formatter.format(r) for r in records)


def our_own_text(records: list[logging.LogRecord]) -> str:
    """Our own records, before any redaction: our code must not even try to log a secret."""
    return "\n".join(f"{r.getMessage()} {r.__dict__}" for r in records if r.name.startswith("partnerloop"))


def test_no_secret_in_any_log_line_or_any_other_response(
    client: TestClient,
    settings: Settings,
    make_staff: Callable[..., StaffMember],
    caplog: pytest.LogCaptureFixture,
) -> None:
    flow = Flow(client)
    with caplog.at_level(logging.DEBUG):
        run_flow(flow, make_staff())
    for name in ("secret_key", "encryption_key", "identity_hash_key"):
        flow.keep(f"setting {name}", getattr(settings, name).get_secret_value())

    access_lines = [r for r in caplog.records if r.name == "partnerloop.access"]
    assert len(access_lines) >= len(flow.responses), "the access log should have seen every request"
    for text in (logged_text(caplog.records), our_own_text(caplog.records)):
        leaked_to_logs = [name for name, value in flow.secrets.items() if value in text]
        assert not leaked_to_logs, f"in the logs: {leaked_to_logs}"

    for name, value in flow.secrets.items():
        carriers = [r for r in flow.responses if value in r.text or value in str(r.headers)]
        expected = 0 if "password" in name or name.startswith("setting") else 1
        assert len(carriers) == expected, f"{name} appears in {len(carriers)} responses, not {expected}"


def test_the_jwks_publishes_no_private_key_material(client: TestClient) -> None:
    keys = client.get("/.well-known/jwks.json").json()["keys"]
    assert keys
    for key in keys:
        assert not PRIVATE_JWK_MEMBERS & set(key), key


def test_libraries_that_log_credentials_are_held_at_info_and_shapes_are_redacted() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("authlib").level)
    try:
        configure("DEBUG")
        assert logging.getLogger("authlib").getEffectiveLevel() == logging.INFO
        assert logging.getLogger("partnerloop.api").getEffectiveLevel() == logging.DEBUG
    finally:
        root.handlers[:], _, _ = saved
        root.setLevel(saved[1])
        logging.getLogger("authlib").setLevel(saved[2])
    record = logging.makeLogRecord(
        {"msg": "issued %s and %s", "args": ("plp_rt_abc-DEF_123", "eyJhbGc.eyJzdWIi.c2ln"), "levelno": 10}
    )
    line = JsonFormatter().format(record)
    assert "plp_rt_abc" not in line and "eyJzdWIi" not in line and line.count(REDACTED) == 2
