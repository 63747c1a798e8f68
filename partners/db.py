"""Engine, sessions and the tenant-scoped query helpers every domain query goes through."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, Engine, Insert, Table, TextClause, bindparam, create_engine, event, insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, SQLModel, col, select
from sqlmodel.sql.expression import SelectOfScalar

from partners.errors import NotFound

ModelT = TypeVar("ModelT", bound=SQLModel)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always hands back aware datetimes, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlalchemy_url(url: str) -> str:
    """Pick our drivers: psycopg 3 for PostgreSQL."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite gets foreign keys, WAL and a busy timeout."""
    url = sqlalchemy_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if "poolclass" not in kwargs:
        kwargs.update(pool_size=10, max_overflow=10)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# An INSERT with named bind parameters and the values for them.
Write = tuple[Insert, dict[str, Any]]


def upsert_insert(table: Table, dialect_name: str) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that takes `on_conflict_do_nothing/update`: both dialects have one, with the same API."""
    return (postgresql.insert if dialect_name == "postgresql" else sqlite.insert)(table)


def _placeholders(table: Table, columns: Sequence[str], count: int, prefix: str) -> list[dict[str, Any]]:
    return [{c: bindparam(f"{prefix}{i}_{c}", type_=table.c[c].type) for c in columns} for i in range(count)]


@functools.cache
def multirow_insert(table: Table, columns: tuple[str, ...], count: int, prefix: str) -> Insert:
    """INSERT of `count` rows with named parameters (`{prefix}{i}_{column}`), built once per shape:
    SQLAlchemy then reuses its compiled form and psycopg prepares it (inline values would be
    compiled again on every call)."""
    return insert(table).values(_placeholders(table, columns, count, prefix))


def multirow_upsert(
    table: Table, columns: Sequence[str], count: int, prefix: str, dialect_name: str
) -> postgresql.Insert | sqlite.Insert:
    """`multirow_insert` as the dialect's INSERT, for the caller to add its ON CONFLICT clause to
    (and to keep per shape, as `multirow_insert` is kept)."""
    return upsert_insert(table, dialect_name).values(_placeholders(table, columns, count, prefix))


def multirow_params(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], prefix: str) -> dict[str, Any]:
    """The parameters of `multirow_insert` for these rows."""
    return {f"{prefix}{i}_{c}": row[c] for i, row in enumerate(rows) for c in columns}


def execute_together(session: Session, writes: Sequence[Write]) -> None:
    """Run independent writes (none reads what another writes, parameter names distinct);
    on PostgreSQL in one round trip, all but the last as data-modifying CTEs of the last."""
    dialect = session.get_bind().dialect.name
    if len(writes) > 1 and dialect == "postgresql":
        params: dict[str, Any] = {}
        for _, values in writes:
            params.update(values)
        session.execute(_as_text(_together(tuple(statement for statement, _ in writes)), dialect), params)
        return
    for statement, values in writes:
        session.execute(_as_text(statement, dialect), values)


def together(writes: Sequence[Write]) -> Write:
    """PostgreSQL: independent writes as one statement (all but the last as data-modifying CTEs of
    the last) and its parameters, for a caller with its own connection."""
    params: dict[str, Any] = {}
    for _, values in writes:
        params.update(values)
    statements = tuple(statement for statement, _ in writes)
    return (statements[0] if len(statements) == 1 else _together(statements)), params


@functools.cache
def _together(statements: tuple[Insert, ...]) -> Insert:
    *first, last = statements
    return last.add_cte(*(s.cte(f"write_{i}") for i, s in enumerate(first)))


# A psycopg placeholder with the cast SQLAlchemy renders after it: `%(name)s::TIMESTAMP WITH TIME ZONE`.
_PYFORMAT = re.compile(r"%\((\w+)\)s(?:::([A-Z][A-Z ]*[A-Z]))?")


@functools.cache
def _as_text(statement: Insert, dialect_name: str) -> TextClause:
    """The statement's SQL, rendered once: SQLAlchemy compiles multi-row INSERTs on every run
    (their cache key is None), a text clause with typed parameters it does not."""
    if dialect_name == "postgresql":
        compiled = statement.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
        sql = _PYFORMAT.sub(lambda m: f"CAST(:{m[1]} AS {m[2]})" if m[2] else f":{m[1]}", compiled.string)
    else:
        compiled = statement.compile(dialect=sqlite.dialect(paramstyle="named"))
        sql = compiled.string
    binds = [bindparam(b.key, type_=b.type) for b in compiled.binds.values()]
    return text(sql).bindparams(*binds)


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def owned(model: type[ModelT], tenant_id: str) -> SelectOfScalar[ModelT]:
    """SELECT of a tenant-owned model, already restricted to one tenant."""
    return select(model).where(col(model.tenant_id) == tenant_id)  # type: ignore[attr-defined]


def get_owned(session: Session, model: type[ModelT], tenant_id: str, object_id: str) -> ModelT:
    """The tenant's object with this id; NotFound for another tenant's as for a missing one."""
    found = session.exec(owned(model, tenant_id).where(col(model.id) == object_id)).first()  # type: ignore[attr-defined]
    if found is None:
        raise NotFound(f"No {model.__name__.lower()} with id '{object_id}'.", param="id")
    return found


def keyset_page(
    session: Session, query: SelectOfScalar[ModelT], model: type[ModelT], after: str | None, limit: int
) -> tuple[Sequence[ModelT], bool]:
    """Up to `limit` rows with ids after `after`, in id order, and whether more follow."""
    id_column = col(model.id)  # type: ignore[attr-defined]
    if after is not None:
        query = query.where(id_column > after)
    rows = session.exec(query.order_by(id_column).limit(limit + 1)).all()
    return rows[:limit], len(rows) > limit
