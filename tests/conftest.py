"""Shared fixtures: a migrated database (SQLite, or PostgreSQL when
PARTNERLOOP_TEST_DATABASE_URL is set), emptied after each test, and an app on it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, make_url, text
from sqlmodel import Session

from api.app import create_app
from partners.db import make_engine
from partners.migrate import upgrade
from partners.schema import metadata
from partners.settings import Settings, load_settings

pytest_plugins = [
    "tests.factories",
    "tests.factories_partners",
    "tests.factories_offers",
    "tests.factories_exchange",
    "tests.factories_redemptions",
    "tests.factories_webhooks",
    "tests.factories_sync",
    "tests.factories_contacts",
    "tests.api.walker",
]


def _fresh_postgres(url: str) -> tuple[str, str]:
    """A new, empty database beside the one named in `url`, so runs never share state."""
    base = make_url(url)
    name = f"{base.database or 'test'}_{secrets.token_hex(4)}"
    admin = make_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False), name


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("PARTNERLOOP_TEST_DATABASE_URL")
    if not configured:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        upgrade(url)
        yield url
        return
    url, name = _fresh_postgres(configured)
    upgrade(url)
    yield url
    admin = make_engine(configured, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def spare_database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of the dialect under test (not migrated), dropped afterwards."""
    configured = os.environ.get("PARTNERLOOP_TEST_DATABASE_URL")
    if not configured:
        yield f"sqlite:///{tmp_path / 'spare.db'}"
        return
    url, name = _fresh_postgres(configured)
    yield url
    admin = make_engine(configured, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def _empty_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts from empty tables (real commits, so concurrency tests are real too)."""
    yield
    if "engine" not in request.fixturenames:
        return
    engine: Engine = request.getfixturevalue("engine")
    tables = list(reversed(metadata.sorted_tables))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # One round trip of DELETEs, children first: TRUNCATE of every table costs ~0.7 s a test
            # (new files for each table), which made the PostgreSQL run three times the SQLite one.
            quote = connection.dialect.identifier_preparer.quote
            statements = (f"DELETE FROM {quote(t.name)}" for t in tables)  # noqa: S608 (our own table names)
            connection.exec_driver_sql("; ".join(statements))
        else:
            for table in tables:
                connection.execute(table.delete())


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session for arranging and checking data; commit to make rows visible to the app."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(
        database_url=database_url,
        base_url="http://testserver",
        secret_key=secrets.token_urlsafe(48),
        encryption_key=secrets.token_urlsafe(48),
        identity_hash_key=secrets.token_urlsafe(48),
        secrets_file=Path(tmp_path_factory.mktemp("secrets")) / "unused.json",
        max_body_bytes=64 * 1024,
        # /metrics is on in tests, as in a deployment that scrapes it (tests/api/test_metrics.py).
        metrics_token=secrets.token_urlsafe(32),
        # Tests call many routes with one token; the limits have their own tests (test_rate_limits.py).
        rate_limit_per_minute=1_000_000,
        rate_limit_burst=1_000_000,
        public_rate_limit_per_minute=1_000_000,
        public_rate_limit_burst=1_000_000,
    )


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    return create_app(settings, engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
