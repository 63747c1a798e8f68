"""Set-based writes for bulk ingest: COPY on PostgreSQL, executemany on SQLite.

The ORM costs ~40× a COPY per row (see /work/shared/PERFORMANCE-NOTES.md), so batches of
thousands of rows go through here as plain tuples. On PostgreSQL rows are COPYed into a
per-connection temporary staging table shaped like the target, then merged with one
`INSERT … SELECT … ON CONFLICT`; rows with no possible conflict are COPYed straight in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, ColumnElement, Table, Text, any_, cast, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.types import NullType
from sqlmodel import Session

Row = dict[str, Any]


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def one_of(session: Session, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL as `= ANY(array)`, one parameter instead of thousands."""
    if _postgres(session):
        # One untyped parameter cast to an array: the driver would adapt a list element by element.
        # Untyped, so the server reads it as an array constant (planned as a hashed lookup);
        # a cast of a text parameter would be evaluated per row, each row searching the array.
        array = cast(literal(array_literal(values), NullType()), ARRAY(Text()))
        return column == any_(array)  # type: ignore[no-any-return]
    return column.in_(list(values))  # type: ignore[no-any-return]


def array_literal(values: Sequence[str]) -> str:
    """A PostgreSQL array literal of these strings (`{"a","b"}`), each quoted and escaped."""
    quoted = (value.replace("\\", "\\\\").replace('"', '\\"') for value in values)
    return '{"' + '","'.join(quoted) + '"}' if values else "{}"


def _driver(session: Session) -> Any:
    return session.connection().connection.driver_connection


def _copy_values(table: Table, columns: Sequence[str], rows: Sequence[Row]) -> list[Sequence[Any]]:
    # COPY takes JSON columns as their text.
    as_json = [index for index, name in enumerate(columns) if isinstance(table.c[name].type, JSON)]
    values = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
    if not as_json:
        return [values(row) for row in rows]
    dumps = json.JSONEncoder().encode
    copied: list[Sequence[Any]] = []
    for row in rows:
        value = list(values(row))
        for index in as_json:
            value[index] = dumps(value[index])
        copied.append(value)
    return copied


def _copy(cursor: Any, target: str, columns: Sequence[str], values: Sequence[Sequence[Any]]) -> None:
    with cursor.copy(f"COPY {target} ({', '.join(columns)}) FROM STDIN") as copy:
        write = copy.write_row
        for value in values:
            write(value)


def _stage(cursor: Any, table: Table) -> str:
    stage = f"bulk_stage_{table.name}"
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    return stage


def insert(session: Session, table: Table, rows: Sequence[Row]) -> None:
    """Insert rows that cannot conflict with stored ones (new ids)."""
    if not rows:
        return
    columns = list(rows[0])
    if _postgres(session):
        with _driver(session).cursor() as cursor:
            _copy(cursor, table.name, columns, _copy_values(table, columns, rows))
        return
    session.execute(table.insert(), list(rows))


def insert_values(session: Session, table: Table, columns: Sequence[str], values: Sequence[Sequence[Any]]) -> None:
    """`insert` for rows given as value tuples in the order of `columns` (no dict per row; no JSON columns)."""
    if not values:
        return
    if _postgres(session):
        with _driver(session).cursor() as cursor:
            _copy(cursor, table.name, columns, values)
        return
    session.execute(table.insert(), [dict(zip(columns, value, strict=True)) for value in values])


def upsert(session: Session, table: Table, rows: Sequence[Row], keys: Sequence[str]) -> None:
    """Insert rows, or update every other column of the stored row with the same `keys`.

    The rows must not repeat a key among themselves.
    """
    if not rows:
        return
    columns = list(rows[0])
    others = [c for c in columns if c not in keys]
    if _postgres(session):
        assignments = ", ".join(f"{c} = excluded.{c}" for c in others)
        with _driver(session).cursor() as cursor:
            stage = _stage(cursor, table)
            _copy(cursor, stage, columns, _copy_values(table, columns, rows))
            names = ", ".join(columns)
            cursor.execute(
                f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage} "  # noqa: S608 (our own names)
                f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {assignments}"
            )
            cursor.execute(f"TRUNCATE {stage}")
        return
    statement = sqlite_insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys), set_={c: statement.excluded[c] for c in others}
    )
    session.execute(statement, list(rows))


def insert_new(
    session: Session,
    table: Table,
    columns: Sequence[str],
    values: Sequence[Sequence[Any]],
    unique: Sequence[str],
    id_column: str,
) -> set[Any]:
    """Insert rows (value tuples in the order of `columns`), skipping those whose `unique`
    columns are taken already; the ids inserted."""
    if not values:
        return set()
    if _postgres(session):
        with _driver(session).cursor() as cursor:
            stage = _stage(cursor, table)
            _copy(cursor, stage, columns, values)
            names = ", ".join(columns)
            cursor.execute(
                f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage} "  # noqa: S608 (our own names)
                f"ON CONFLICT ({', '.join(unique)}) DO NOTHING RETURNING {id_column}"
            )
            inserted = {row[0] for row in cursor.fetchall()}
            cursor.execute(f"TRUNCATE {stage}")
        return inserted
    rows = [dict(zip(columns, value, strict=True)) for value in values]
    session.execute(sqlite_insert(table).on_conflict_do_nothing(index_elements=list(unique)), rows)
    # Our ids are new, so those now stored are the ones this statement inserted.
    ours = one_of(session, table.c[id_column], [row[id_column] for row in rows])
    found = session.execute(select(table.c[id_column]).where(table.c.tenant_id == rows[0]["tenant_id"], ours))
    return {value for (value,) in found}


def fetch(session: Session, table: Table, tenant_id: str, column: str, values: Sequence[Any]) -> list[Any]:
    """The tenant's rows of `table` whose `column` is one of `values` (all columns)."""
    if not values:
        return []
    query = select(table).where(table.c.tenant_id == tenant_id, one_of(session, table.c[column], values))
    return list(session.execute(query))
