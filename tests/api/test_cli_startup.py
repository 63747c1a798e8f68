"""`partnerloop serve` refuses to start, saying why, when the encryption key no longer opens the signing keys."""

import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session

from api import cli
from api.app import create_app
from partners import signing_keys
from partners.settings import Settings


def test_a_changed_encryption_key_stops_the_start_with_what_to_do(session: Session, settings: Settings) -> None:
    stored = signing_keys.rotate(session, settings.encryption_key.get_secret_value())
    session.commit()
    cli.check_signing_keys(settings)  # the key they were stored under: nothing to say

    other = settings.model_copy(update={"encryption_key": SecretStr(secrets.token_urlsafe(48))})
    with pytest.raises(SystemExit) as stopped:
        cli.check_signing_keys(other)
    message = str(stopped.value)
    assert stored.kid in message and "Restore the previous encryption key" in message


def test_serve_migrates_once_and_tells_uvicorn_which_proxies_to_believe(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    started: dict[str, Any] = {}
    # uvicorn.run would serve forever: record how it is asked to, as the process boundary it is.
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: started.update(kwargs, app=app))
    monkeypatch.setenv("PARTNERLOOP_BASE_URL", settings.base_url)
    monkeypatch.delenv("PARTNERLOOP_MIGRATE_ON_START", raising=False)
    behind_proxy = settings.model_copy(update={"forwarded_allow_ips": "10.0.0.0/8,172.16.0.0/12"})
    cli.cmd_serve(behind_proxy, cli.build_parser().parse_args(["serve", "--workers", "2"]))
    assert started["forwarded_allow_ips"] == "10.0.0.0/8,172.16.0.0/12"
    assert started["proxy_headers"] is True
    # The workers it starts read this, and do not run the migrations a second time.
    assert os.environ["PARTNERLOOP_MIGRATE_ON_START"] == "false"


def test_an_app_told_not_to_migrate_leaves_the_schema_alone(settings: Settings, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    fresh = settings.model_copy(update={"database_url": url, "migrate_on_start": False})
    with TestClient(create_app(fresh), raise_server_exceptions=False) as client:
        assert client.get("/readyz").status_code == 503
    migrating = settings.model_copy(update={"database_url": url})
    with TestClient(create_app(migrating), raise_server_exceptions=False) as client:
        assert client.get("/readyz").status_code == 200
