"""Prepared plain-SQL statements on Django's PostgreSQL connection, for hot
paths where building the query with the ORM costs more than running it.

The same technique as the posting service's own `_fetch` (bank/services/posting.py),
plus what the API's hot path needs: the statements go through Django's execute
wrappers and are logged when Django logs queries, so query counts in tests
(django_assert_num_queries) and the benchmark's time split see them; and
statements that do not need each other's results can share one round trip.
PostgreSQL only; callers keep an ORM path for other databases.
"""

import time

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections

_NEVER_BY_ITSELF = 2**62


def fetch(sql: str, params) -> list[tuple]:
    """Run one prepared statement in the current transaction and return its rows,
    raising Django's error classes."""
    return fetch_together((sql, params))[0]


def fetch_together(*statements: tuple[str, object]) -> list[list[tuple]]:
    """Run prepared statements sent together in one round trip (psycopg's pipeline
    mode) and return each one's rows. PostgreSQL still runs them one after the
    other, each with its own snapshot, so a later one sees what an earlier one
    waited for (a row lock) and every transaction that committed meanwhile."""
    db = connections[DEFAULT_DB_ALIAS]  # one lookup: each `connection.x` is a thread-local lookup of its own
    db.ensure_connection()
    db.validate_no_broken_transaction()
    run = _run
    for wrapper in reversed(db.execute_wrappers):
        run = _bind(wrapper, run)
    sql = statements[0][0] if len(statements) == 1 else ";\n".join(s for s, _ in statements)
    context = {"connection": db, "cursor": None}
    if not db.queries_logged:
        return run(sql, statements, False, context)
    started = time.monotonic()
    try:
        return run(sql, statements, False, context)
    finally:
        duration = f"{time.monotonic() - started:.3f}"
        db.queries_log.extend({"sql": s, "time": duration} for s, _ in statements)


def _bind(wrapper, run):
    return lambda sql, params, many, context: wrapper(run, sql, params, many, context)


def _run(sql: str, statements, many, context) -> list[list[tuple]]:
    db = context["connection"]
    pg = db.connection
    if pg.prepare_threshold is None:
        # Django switches psycopg's automatic preparing off, which also refuses
        # prepare=True. Allow the explicit kind; the ORM's statements are not
        # affected (its client-side-binding cursors never prepare).
        pg.prepare_threshold = _NEVER_BY_ITSELF
    with db.wrap_database_errors:
        if len(statements) == 1:
            [(sql, params)] = statements
            with psycopg.Cursor(pg) as cursor:
                cursor.execute(sql, params, prepare=True)
                return [cursor.fetchall()]  # every statement run here returns rows (a SELECT or RETURNING)
        cursors = [psycopg.Cursor(pg) for _ in statements]
        try:
            with pg.pipeline():
                for cursor, (sql, params) in zip(cursors, statements, strict=True):
                    cursor.execute(sql, params, prepare=True)
            return [cursor.fetchall() for cursor in cursors]
        finally:
            for cursor in cursors:
                cursor.close()


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
