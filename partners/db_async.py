"""The async PostgreSQL pool of the API's hot path (psycopg 3), beside the SQLAlchemy engine."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine


def conninfo(engine: Engine) -> str:
    """The libpq URL of a SQLAlchemy PostgreSQL engine (same server, database and credentials)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


# Each connection plans a statement once (generic plans: custom ones re-planned the serving query on
# every call) and keeps that plan for its life. Planned while a table was small or just truncated, or
# with statistics autovacuum has not refreshed, a plan could scan a table that has since grown:
# every statement here has an index to use, so sequential scans are priced out rather than chosen.
HOT_PATH_OPTIONS = "-c plan_cache_mode=force_generic_plan -c enable_seqscan=off"


async def open_pool(
    engine: Engine, *, min_size: int = 2, max_size: int = 10
) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """A pool of autocommit connections (transactions are explicit) that prepare every statement at
    first use. No check on checkout: a broken connection fails its request and is replaced."""
    pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
        conninfo(engine),
        min_size=min(min_size, max_size),
        max_size=max_size,
        kwargs={"autocommit": True, "prepare_threshold": 0, "options": HOT_PATH_OPTIONS},
        open=False,
        name="exchange",
    )
    # Not waiting for the first connections: with the database down the app must still start, so that
    # /readyz can say so (503) and the pool fills once the database answers.
    await pool.open(wait=False)
    return pool
