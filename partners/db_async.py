"""The async PostgreSQL pool of the API's hot path (psycopg 3), beside the SQLAlchemy engine."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine


def conninfo(engine: Engine) -> str:
    """The libpq URL of a SQLAlchemy PostgreSQL engine (same server, database and credentials)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


async def open_pool(
    engine: Engine, *, min_size: int = 2, max_size: int = 10
) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """A pool of autocommit connections (transactions are explicit) that prepare every statement at
    first use. No check on checkout: a broken connection fails its request and is replaced."""
    pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
        conninfo(engine),
        min_size=min_size,
        max_size=max_size,
        kwargs={"autocommit": True, "prepare_threshold": 0, "options": "-c plan_cache_mode=force_generic_plan"},
        open=False,
        name="exchange",
    )
    # Not waiting for the first connections: with the database down the app must still start, so that
    # /readyz can say so (503) and the pool fills once the database answers.
    await pool.open(wait=False)
    return pool
