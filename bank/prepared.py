"""Prepared plain-SQL statements on Django's PostgreSQL connection, for hot
paths where building the query with the ORM costs more than running it (the
posting service, the API's payment, settlement). The one place such statements
run: they go through Django's execute wrappers and are logged when Django logs
queries, so query counts in tests (django_assert_num_queries) and the
benchmark's time split see them; statements that do not need each other's
results can share one round trip; and binary COPY goes the same way.
PostgreSQL only; callers keep an ORM path for other databases.
"""

import time
from collections.abc import Iterable

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections

_NEVER_BY_ITSELF = 2**62


def fetch(sql: str, params) -> list[tuple]:
    """Run one prepared statement in the current transaction and return its rows,
    raising Django's error classes."""
    return fetch_together((sql, params))[0]


def execute(sql: str, params) -> None:
    """Run one prepared statement that returns no rows (an UPDATE) in the current transaction."""
    fetch_together((sql, params))


def fetch_together(*statements: tuple[str, object]) -> list[list[tuple]]:
    """Run prepared statements sent together in one round trip (psycopg's pipeline
    mode) and return each one's rows. PostgreSQL still runs them one after the
    other, each with its own snapshot, so a later one sees what an earlier one
    waited for (a row lock) and every transaction that committed meanwhile."""
    sql = statements[0][0] if len(statements) == 1 else ";\n".join(s for s, _ in statements)
    return _through_django(_run, sql, statements, [s for s, _ in statements])


def copy_in(sql: str, types: list[str], rows: Iterable[tuple]) -> None:
    """`COPY table (columns) FROM STDIN (FORMAT BINARY)`: send `rows`, each a tuple
    of values of the PostgreSQL `types`, in the current transaction. psycopg
    formats binary COPY rows in C, several times faster than it adapts the
    arrays of one INSERT, and PostgreSQL inserts them a page at a time."""
    _through_django(_copy, sql, (types, rows), [sql])


def _through_django(run, sql: str, params, logged: list[str]):
    """run(sql, params, many, context) on Django's connection, through its execute
    wrappers and, when it logs queries, into its query log (one line per statement)."""
    db = connections[DEFAULT_DB_ALIAS]  # one lookup: each `connection.x` is a thread-local lookup of its own
    db.ensure_connection()
    db.validate_no_broken_transaction()
    for wrapper in reversed(db.execute_wrappers):
        run = _bind(wrapper, run)
    context = {"connection": db, "cursor": None}
    if not db.queries_logged:
        return run(sql, params, False, context)
    started = time.monotonic()
    try:
        return run(sql, params, False, context)
    finally:
        duration = f"{time.monotonic() - started:.3f}"
        db.queries_log.extend({"sql": s, "time": duration} for s in logged)


def _bind(wrapper, run):
    return lambda sql, params, many, context: wrapper(run, sql, params, many, context)


def _run(sql: str, statements, many, context) -> list[list[tuple]]:
    db = context["connection"]
    pg = _preparing(db.connection)
    with db.wrap_database_errors:
        if len(statements) == 1:
            [(sql, params)] = statements
            with psycopg.Cursor(pg) as cursor:
                cursor.execute(sql, params, prepare=True)
                return [_rows(cursor)]
        cursors = [psycopg.Cursor(pg) for _ in statements]
        try:
            with pg.pipeline():
                for cursor, (sql, params) in zip(cursors, statements, strict=True):
                    cursor.execute(sql, params, prepare=True)
            return [_rows(cursor) for cursor in cursors]
        finally:
            for cursor in cursors:
                cursor.close()


def _copy(sql: str, params, many, context) -> None:
    types, rows = params
    db = context["connection"]
    with db.wrap_database_errors, psycopg.Cursor(db.connection) as cursor, cursor.copy(sql) as copy:
        copy.set_types(types)
        write = copy.write_row
        for row in rows:
            write(row)


def _preparing(pg: psycopg.Connection) -> psycopg.Connection:
    if pg.prepare_threshold is None:
        # Django switches psycopg's automatic preparing off, which also refuses
        # prepare=True. Allow the explicit kind; the ORM's statements are not
        # affected (its client-side-binding cursors never prepare).
        pg.prepare_threshold = _NEVER_BY_ITSELF
    return pg


def _rows(cursor: psycopg.Cursor) -> list[tuple]:
    return cursor.fetchall() if cursor.description is not None else []  # no description: an UPDATE without RETURNING


def int_array(values) -> str:
    """Integers as PostgreSQL's array text, for a `%s::bigint[]` parameter: sent
    untyped, the server reads it as the array it is cast to. psycopg adapts a
    list one element at a time in Python; this is one C join, several times
    faster for the thousands of ids a settlement chunk sends."""
    return "{" + ",".join(map(str, values)) + "}"


class Columns:
    """Some or all of a model's columns, and instances built from them as the ORM
    would (its from_db and its fields' from_db_value, e.g. JSONField's decoding)."""

    def __init__(self, model, attnames=None):
        fields = [f for f in model._meta.concrete_fields if attnames is None or f.attname in attnames]
        self.model = model
        self.attnames = [f.attname for f in fields]
        self.names = [f.column for f in fields]
        self.converters = [(i, f.from_db_value) for i, f in enumerate(fields) if hasattr(f, "from_db_value")]

    def __len__(self) -> int:
        return len(self.names)

    def select(self, alias: str) -> str:
        return ", ".join(f"{alias}.{name}" for name in self.names)

    def build(self, values):
        db = connections[DEFAULT_DB_ALIAS]
        if self.converters:
            values = list(values)
            for index, convert in self.converters:
                values[index] = convert(values[index], None, db)
        return self.model.from_db(db.alias, self.attnames, values)
