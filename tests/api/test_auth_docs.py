"""docs/auth.md stays true: its Python runs against the API, its tables match the code,
and every route it names exists."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from authlib.integrations import httpx_client
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from partners.retailers import Tenant
from partners.scopes import DESCRIPTIONS, ROLE_SCOPES, Role
from tests.factories import Credentials

DOC = (Path(__file__).parents[2] / "docs" / "auth.md").read_text()
EXAMPLE_BASE = "https://partnerloop.example"


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.DOTALL)


def table_rows(heading: str) -> list[list[str]]:
    """The rows of the first table whose header row starts with `heading`."""
    lines = DOC.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {heading} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_python_examples_run_against_the_api(
    client: TestClient,
    session: Session,
    make_api_client: Callable[..., Credentials],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    blocks = code_blocks("python")
    assert blocks, "docs/auth.md has no Python example"
    creds = make_api_client(["profile:read", "customers:write"])
    monkeypatch.setenv("PARTNERLOOP_BASE_URL", "http://testserver")
    monkeypatch.setenv("PARTNERLOOP_CLIENT_ID", creds.client_id)
    monkeypatch.setenv("PARTNERLOOP_CLIENT_SECRET", creds.client_secret)

    class InProcess(httpx_client.OAuth2Client):  # type: ignore[misc]
        """The documented client, talking to the app in this process instead of the network."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, transport=client._transport, **kwargs)

    monkeypatch.setattr(httpx_client, "OAuth2Client", InProcess)
    for block in blocks:
        namespace: dict[str, Any] = {}
        exec(compile(block, "docs/auth.md", "exec"), namespace)  # noqa: S102
        api = namespace["api"]
        assert api.token["scope"] == "customers:write profile:read"
    tenant = session.get(Tenant, creds.tenant_id)
    assert tenant is not None
    assert capsys.readouterr().out.strip().endswith(tenant.name)


def test_scopes_table_matches_the_code() -> None:
    documented = {row[0].strip("`"): row[1] for row in table_rows("scope")}
    assert documented == {str(scope): text for scope, text in DESCRIPTIONS.items()}


def test_roles_table_matches_the_code() -> None:
    rows = {row[0]: row[1] for row in table_rows("role")}
    assert set(rows) == {str(role) for role in Role}
    all_scopes = {str(s) for s in DESCRIPTIONS}
    for role, text in rows.items():
        granted = {str(s) for s in ROLE_SCOPES[Role(role)]}
        if text.startswith("all of them"):
            assert granted == all_scopes, role
        elif text.startswith("all but"):
            assert granted == all_scopes - set(re.findall(r"`([^`]+)`", text)), role
        else:
            assert granted == set(re.findall(r"`([^`]+)`", text)), role


def test_every_route_named_exists(app: FastAPI) -> None:
    paths = set(app.openapi()["paths"]) | {"/docs", "/docs/oauth2-redirect", "/login", "/logout"}
    templates = [re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$") for p in paths]
    named = set(re.findall(r"(?:partnerloop\.example|`(?:GET|POST|PUT|PATCH|DELETE)) ?(/[\w./{}-]+)", DOC))
    named |= set(re.findall(r"`(/(?:v1|oauth|\.well-known)/[\w./{}-]*)`", DOC))
    assert len(named) > 10
    unknown = sorted(p for p in named if not any(t.match(p) for t in templates))
    assert not unknown, f"docs/auth.md names routes that do not exist: {unknown}"
