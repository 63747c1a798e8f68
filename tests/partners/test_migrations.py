import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, pool, text

from partners.db import make_engine
from partners.migrate import MIGRATION_LOCK, is_current, upgrade
from partners.schema import metadata


def test_migrations_reach_head(engine: Engine) -> None:
    assert is_current(engine)


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


def postgres_only(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's; SQLite serializes writers through its file")


def test_an_upgrade_waits_for_the_migration_lock(engine: Engine, spare_database_url: str) -> None:
    postgres_only(engine)
    holder = make_engine(spare_database_url, poolclass=pool.NullPool)
    with holder.connect() as held:
        held.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        worker = threading.Thread(target=upgrade, args=(spare_database_url,))
        worker.start()
        worker.join(timeout=1.5)
        assert worker.is_alive(), "the upgrade ran while another process held the migration lock"
        assert "alembic_version" not in inspect(held).get_table_names()
        held.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
        held.commit()
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert is_current(holder)
    holder.dispose()


def test_replicas_upgrading_at_once_migrate_once(engine: Engine, spare_database_url: str) -> None:
    postgres_only(engine)
    failures: list[BaseException] = []

    def replica() -> None:
        try:
            upgrade(spare_database_url)
        except BaseException as exc:
            failures.append(exc)

    replicas = [threading.Thread(target=replica) for _ in range(3)]
    for thread in replicas:
        thread.start()
    for thread in replicas:
        thread.join(timeout=180)
    assert failures == []
    spare = make_engine(spare_database_url, poolclass=pool.NullPool)
    assert is_current(spare)
    spare.dispose()
