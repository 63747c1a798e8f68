"""SQLAlchemy statements run on a raw psycopg connection: compiled once, values processed as SQLAlchemy would.

The async hot path talks to psycopg directly (pipelines, no ORM, no SQLAlchemy execution
machinery) but keeps one definition of each statement: its SQL is compiled once per statement
object for the psycopg dialect, bind values go through the same type processors (UTC
datetimes, JSON) and result rows through the same result processors as on the sync path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import Executable
from sqlalchemy.types import TypeDecorator

_Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement's SQL (psycopg `%(name)s` placeholders) and how to shape its values and rows."""

    sql: str
    defaults: Mapping[str, Any]  # literal values SQLAlchemy bound inside the statement
    binds: Mapping[str, _Processor]
    results: tuple[tuple[int, _Processor], ...]  # (column index, processor) of the columns to process

    def params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The statement's parameters from these values, as SQLAlchemy would send them."""
        merged = {**self.defaults, **values}
        for name, process in self.binds.items():
            if name in merged:
                merged[name] = process(merged[name])
        return merged

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        """A result row with SQLAlchemy's result processing (aware UTC datetimes)."""
        if not self.results:
            return tuple(raw)
        row = list(raw)
        for i, process in self.results:
            if row[i] is not None:
                row[i] = process(row[i])
        return tuple(row)


@functools.cache
def _dialect() -> Dialect:
    return psycopg_dialect.dialect()  # type: ignore[no-untyped-call]


@functools.cache
def prepared(statement: Executable) -> Prepared:
    """The compiled form of a statement built once (callers keep the statement object)."""
    dialect = _dialect()
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    binds: dict[str, _Processor] = {}
    defaults: dict[str, Any] = {}
    for bind, name in compiled.bind_names.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            binds[name] = process
        if not bind.required and bind.callable is None and bind.value is not None:
            defaults[name] = bind.value
    results: tuple[tuple[int, _Processor], ...] = ()
    if isinstance(statement, Select):
        # psycopg hands back Python values for the built-in types (numbers, text, JSON); only our own
        # types post-process what it returns (UTCDateTime: aware datetimes in UTC).
        columns = enumerate(c.type for c in statement.selected_columns)
        processors = ((i, t.result_processor(dialect, None)) for i, t in columns if isinstance(t, TypeDecorator))
        results = tuple((i, p) for i, p in processors if p is not None)
    return Prepared(compiled.string, defaults, binds, results)
