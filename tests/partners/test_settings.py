from pathlib import Path

import pytest

from partners.settings import Settings, SettingsError, load_settings

STRONG = "x" * 48


def test_development_generates_secrets_once_and_keeps_them(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    first = load_settings(secrets_file=path, _env_file=None)
    second = load_settings(secrets_file=path, _env_file=None)
    assert first.secret_key.get_secret_value() == second.secret_key.get_secret_value()
    assert len(first.encryption_key.get_secret_value()) >= 32
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("secret", ["", "changeme", "short"])
def test_production_refuses_placeholder_secrets(secret: str) -> None:
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        load_settings(
            environment="production",
            secret_key=secret,
            encryption_key=STRONG,
            identity_hash_key=STRONG,
            database_url="postgresql://db/partnerloop",
            base_url="https://partnerloop.example",
        )


def test_production_refuses_sqlite_and_plain_http() -> None:
    strong = {"secret_key": STRONG, "encryption_key": STRONG, "identity_hash_key": STRONG}
    with pytest.raises(SettingsError, match="PostgreSQL"):
        load_settings(environment="production", base_url="https://p.example", **strong)
    with pytest.raises(SettingsError, match="https"):
        load_settings(environment="production", database_url="postgresql://db/p", base_url="http://p.example", **strong)


def test_production_starts_with_real_secrets() -> None:
    settings = load_settings(
        environment="production",
        secret_key=STRONG,
        encryption_key=STRONG,
        identity_hash_key=STRONG,
        database_url="postgresql://db/partnerloop",
        base_url="https://partnerloop.example/",
    )
    assert settings.is_production
    assert settings.issuer == "https://partnerloop.example"


@pytest.mark.parametrize("value", ["127.0.0.1", "10.0.0.0/8, 172.16.0.0/12", "*", "::1,fd00::/8"])
def test_forwarded_peers_take_addresses_networks_or_a_star(value: str) -> None:
    assert Settings(forwarded_allow_ips=value).forwarded_allow_ips == value


@pytest.mark.parametrize("value", ["proxy.internal", "10.0.0.1/8", "*,10.0.0.1", ""])
def test_forwarded_peers_uvicorn_would_silently_ignore_are_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="FORWARDED_ALLOW_IPS"):
        Settings(forwarded_allow_ips=value)
