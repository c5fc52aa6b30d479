"""Inserts run on the driver's cursor of a session's connection, for the hot paths.

A create's inserts went through SQLAlchemy's ``Connection.execute``: its cached
compilation, execution context, events and result took ~12% of a create's CPU in a
server process, more than SQLite's own work, and on SQLite all of it inside the one write
turn that every writer waits for (docs/benchmarks.md, session 35). Here an INSERT of all
of a table's columns is compiled once per database kind with SQLAlchemy (its SQL, its
parameters' order and each column type's conversion of a value for the driver, as
SQLAlchemy would convert it) and run on the cursor of the session's own connection: in
its transaction, after its write turn was taken. A driver's error comes out as
SQLAlchemy's (``IntegrityError``...), as from ``Session.execute``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, exc, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session


@dataclass(frozen=True, slots=True)
class DriverInsert:
    """An INSERT of every column of one table, compiled for one database."""

    sql: str
    keys: tuple[str, ...]  # the columns in the order of the driver's parameters
    processors: tuple[Callable[[Any], Any] | None, ...]  # per key: SQLAlchemy's conversion
    positional: bool  # the driver's parameters: a tuple, or a dict by key

    def parameters(self, row: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        values = [
            row[key] if convert is None else convert(row[key])
            for key, convert in zip(self.keys, self.processors, strict=True)
        ]
        return tuple(values) if self.positional else dict(zip(self.keys, values, strict=True))


@functools.cache
def compiled_insert(dialect: Dialect, table: Table) -> DriverInsert:
    """Composed and compiled once per database kind and table."""
    columns = [column.key for column in table.columns]
    compiled = insert(table).compile(dialect=dialect, column_keys=columns)
    keys = tuple(compiled.positiontup or ()) if compiled.positional else tuple(columns)
    return DriverInsert(
        sql=compiled.string,
        keys=keys,
        processors=tuple(
            table.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in keys
        ),
        positional=compiled.positional,
    )


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """``rows`` (every column of ``table`` each) inserted in ``session``'s transaction."""
    if not rows:
        return
    dialect = session.get_bind().dialect
    statement = compiled_insert(dialect, table)
    # Converted before the first statement of a write session takes SQLite's write turn.
    values: Any = [statement.parameters(row) for row in rows]
    connection = session.connection()  # the session's transaction, and its write turn
    cursor = connection.connection.cursor()
    try:
        if len(values) == 1:
            cursor.execute(statement.sql, values[0])
        else:
            cursor.executemany(statement.sql, values)
    except dialect.loaded_dbapi.Error as error:
        raise exc.DBAPIError.instance(
            statement.sql, None, error, dialect.loaded_dbapi.Error
        ) from error
    finally:
        cursor.close()
