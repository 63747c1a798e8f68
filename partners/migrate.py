"""Alembic, driven from code so the installed package can migrate any database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, pool, text

from partners.db import make_engine, sqlalchemy_url

MIGRATIONS = Path(__file__).parent / "migrations"
# The PostgreSQL advisory lock that serializes upgrades: replicas starting together queue on it,
# and each upgrades (or finds nothing to do) once the one before it committed. Any constant
# works as long as nothing else in the database takes it; this is "partnerl" in ASCII.
MIGRATION_LOCK = 0x706172746E65726C


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at our migrations and at `database_url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema up to `revision`, one process at a time on PostgreSQL."""
    engine = make_engine(database_url, poolclass=pool.NullPool)
    try:
        upgrade_engine(engine, revision)
    finally:
        engine.dispose()


def is_current(engine: Engine) -> bool:
    """Whether the database is at the newest migration."""
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind an existing engine (the embedded default does this at start)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        lock(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def lock(connection: Connection) -> None:
    """Wait for the migration lock; it is held until the connection's transaction ends.

    Alembic reads the schema's revision after this, so a replica that waited finds the
    upgrade done by the one before it instead of running it a second time. SQLite needs no
    lock: its writers are serialized by the database file itself.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


__all__ = ["is_current", "make_engine", "upgrade", "upgrade_engine"]
